// The status page of one isis member.  Everything on it comes from two
// Server-Sent Event streams of the member's HTTP API: /status (a status
// every second) and /messages (the delivery stream).  Data from the member
// is only ever put in the page as text (textContent), never as markup.
"use strict";

(function () {
  const POINTS = 60; // a minute of status ticks per chart
  const SHOWN = 20; // deliveries listed
  const PREVIEW = 80; // characters of a payload shown
  const RETRY_MS = 5000;
  const SVG = "http://www.w3.org/2000/svg";

  // An EventSource cannot send an Authorization header, so a client token
  // goes in the query.  It is read from this page's own address: the
  // fragment (#token=...) first, as a fragment never reaches a server or
  // its logs.
  // Read by hand: URLSearchParams turns "+" into a space, and base64
  // tokens hold "+".
  function param(text, name) {
    for (const part of text.split("&")) {
      const [key, ...value] = part.split("=");
      if (key !== name) continue;
      try {
        return decodeURIComponent(value.join("="));
      } catch (e) {
        return value.join("="); // not percent-encoded after all
      }
    }
    return null;
  }
  const token =
    param(location.hash.slice(1), "token") ||
    param(location.search.slice(1), "access_token");
  // A token pasted into the fragment of the open page loads no new page by
  // itself: start again with it.
  window.addEventListener("hashchange", () => location.reload());

  // Relative, so that the page also works behind a proxy under a prefix.
  function url(path, params) {
    const query = new URLSearchParams(params);
    if (token) query.set("access_token", token);
    const text = query.toString();
    return text ? path + "?" + text : path;
  }

  const $ = (id) => document.getElementById(id);

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function badge(stream, up) {
    document.querySelector(`.badge[data-stream="${stream}"]`).hidden = up;
    // Stale numbers must not pass for live ones.
    if (stream === "status") document.body.classList.toggle("stale", !up);
  }

  // A line chart of the last POINTS values, scaled to the largest of them,
  // drawn as SVG elements (the page's policy allows no remote code).
  function chart(svg, show, now, max) {
    const values = [];
    const area = document.createElementNS(SVG, "polygon");
    const line = document.createElementNS(SVG, "polyline");
    area.setAttribute("class", "area");
    line.setAttribute("class", "line");
    svg.append(area, line);
    return function push(value) {
      values.push(value);
      if (values.length > POINTS) values.shift();
      // Never divide by zero: a flat line at the bottom when all is 0.
      const top = Math.max(...values) || 1;
      const points = values.map((v, i) => {
        const x = (i + POINTS - values.length) * (100 / (POINTS - 1));
        return `${x.toFixed(2)},${(39 - (v / top) * 36).toFixed(2)}`;
      });
      line.setAttribute("points", points.join(" "));
      const left = points[0].split(",")[0];
      area.setAttribute("points", `${left},40 ${points.join(" ")} 100,40`);
      const highest = Math.max(...values);
      now.textContent = show(value);
      max.textContent = show(highest);
      svg.dataset.last = String(value);
      svg.dataset.max = String(highest);
    };
  }

  const perSecond = (v) => `${v.toFixed(v < 10 ? 1 : 0)}/s`;
  const seconds = (v) => `${v.toFixed(v < 10 ? 2 : 0)} s`;
  const pushRate = chart($("rate-chart"), perSecond, $("rate-now"), $("rate-max"));
  const pushAge = chart($("age-chart"), seconds, $("age-now"), $("age-max"));

  const WHY = {
    flushing: "closing the view: deliveries wait until the new one is installed",
    blocked: "no majority of the view is reachable to close it with",
    removed: "out of the group: it delivers nothing more",
    joining: "being added to the group",
  };

  // Every member the status knows of: the view's, in rank order, then
  // those it was started with or has a link to that are not in the view.
  function memberNames(s) {
    return [...new Set([...s.view_members, ...s.members, ...Object.keys(s.peers)])];
  }

  function connection(s, name) {
    if (name === s.member) return ["self", "this member"];
    // Own properties only: a member may be called "constructor".
    const peer = Object.hasOwn(s.peers, name) ? s.peers[name] : null;
    if (!peer) return ["none", "no link"];
    if (peer.connected_out && peer.connected_in) return ["both", "connected"];
    if (peer.connected_out) return ["out", "connected out only"];
    if (peer.connected_in) return ["in", "connected in only"];
    return ["none", "not connected"];
  }

  function memberItem(s, name) {
    const item = element("li");
    const [link, linkText] = connection(s, name);
    const inView = s.view_members.includes(name);
    const suspected = Object.hasOwn(s.suspects, name);
    const silent = s.silent_members.includes(name);
    item.dataset.member = name;
    item.dataset.connected = link;
    item.dataset.suspected = String(suspected);
    item.dataset.missing = String(silent || !inView);
    item.append(element("span", name, "name"), element("span", linkText, "tag " + link));
    if (suspected) {
      const since = s.suspects[name];
      // null: another member suspects it and said so.
      const text =
        since === null ? "suspected by another" : `suspected for ${since.toFixed(1)} s`;
      item.append(element("span", text, "tag bad"));
    }
    if (!inView) item.append(element("span", "not in the view", "tag bad"));
    else if (silent) item.append(element("span", "silent", "tag bad"));
    const peer = Object.hasOwn(s.peers, name) ? s.peers[name] : null;
    if (peer && peer.silent_s !== null) item.title = `last heard ${seconds(peer.silent_s)} ago`;
    return item;
  }

  let previous = null; // the last status's delivered count, and when

  function showStatus(s) {
    document.title = `${s.member} · ${s.group} · ${s.state}`;
    $("member").textContent = s.member;
    $("group").textContent = s.group;
    $("view").textContent = String(s.view);
    $("state-box").dataset.state = s.state;
    $("state").textContent = s.state;
    $("state-why").textContent =
      s.removed_because || s.refused_because || WHY[s.state] || "";
    $("members").replaceChildren(...memberNames(s).map((n) => memberItem(s, n)));
    $("delivered").textContent = String(s.delivered);
    $("queue").textContent = String(s.queue);
    $("multicasts").textContent = String(s.multicasts);
    const oldest = s.oldest_undelivered;
    $("waiting-for").textContent = oldest ? oldest.waiting_for.join(", ") || "–" : "–";
    // The rate over the time between two events as this page saw them: a
    // late tick is a longer interval, not a spike.
    const at = performance.now();
    if (previous !== null && at > previous.at) {
      const rate = ((s.delivered - previous.delivered) * 1000) / (at - previous.at);
      pushRate(Math.max(0, rate));
    }
    previous = { delivered: s.delivered, at };
    pushAge(oldest && oldest.age_s !== null ? oldest.age_s : 0);
    if (messages === null) {
      // Start with the last SHOWN records, so the list is not empty.
      openMessages(Math.max(1, s.delivered - SHOWN + 1));
    }
  }

  function openStatus() {
    const source = new EventSource(url("status", { every: "1" }));
    source.addEventListener("open", () => badge("status", true));
    source.addEventListener("status", (event) => showStatus(JSON.parse(event.data)));
    source.addEventListener("error", () => {
      badge("status", false);
      previous = null;
      // A lost connection the EventSource retries by itself; an HTTP error
      // (a wrong token, a member shutting down) closes it for good.
      if (source.readyState !== EventSource.CLOSED) return;
      setTimeout(openStatus, RETRY_MS);
      // An EventSource does not say which error: ask once more to tell.
      fetch(url("status")).then((answer) => {
        if (answer.status !== 401) return;
        $("state-box").dataset.state = "unauthorised";
        $("state").textContent = "client token needed";
        $("state-why").textContent =
          "this member wants its client token: open this page as …/#token=TOKEN";
      }, () => {});
    });
  }

  let messages = null; // the open delivery stream
  let shown = 0; // the highest index listed: replays are not listed twice

  function addRow(index, row) {
    if (index <= shown) return;
    shown = index;
    const list = $("deliveries");
    list.prepend(row);
    while (list.children.length > SHOWN) list.lastElementChild.remove();
  }

  function deliveryRow(d) {
    const row = element("li");
    row.dataset.index = String(d.index);
    row.dataset.sender = d.sender;
    const binary = !("payload" in d);
    let text = binary ? d.payload_b64 : d.payload;
    if (text.length > PREVIEW) text = text.slice(0, PREVIEW) + "…";
    row.append(
      element("span", `#${d.index}`, "index"),
      element("span", d.sender, "sender"),
      element("span", d.view === null ? "" : `view ${d.view}`, "in-view"),
      element("span", text, binary ? "payload binary" : "payload"),
    );
    return row;
  }

  function viewRow(v) {
    const row = element("li", undefined, "view-change");
    row.dataset.viewIndex = String(v.index);
    row.append(
      element("span", `#${v.index}`, "index"),
      element("span", `view ${v.view} installed: ${v.members.join(", ")}`, "payload"),
    );
    return row;
  }

  function openMessages(from) {
    // Later reconnections by the EventSource resume by Last-Event-ID (each
    // delivery's id is its index), which the member prefers to ?from=.
    const source = new EventSource(url("messages", from ? { from } : {}));
    messages = source;
    let opened = false;
    source.addEventListener("open", () => {
      opened = true;
      badge("messages", true);
    });
    source.addEventListener("message", (event) => {
      const d = JSON.parse(event.data);
      addRow(d.index, deliveryRow(d));
    });
    source.addEventListener("view", (event) => {
      const v = JSON.parse(event.data);
      addRow(v.index, viewRow(v));
    });
    source.addEventListener("dropped", () => {
      // This page read too slowly: go on from now, as it shows only the
      // last few (replaying what it missed would only fall behind again).
      source.close();
      openMessages(null);
    });
    for (const ending of ["end", "removed"]) {
      // The member is stopping, or out of the group: say why, and try
      // again later (a restarted member serves again).
      source.addEventListener(ending, (event) => {
        source.close();
        badge("messages", false);
        $("state-why").textContent = JSON.parse(event.data).error;
        setTimeout(() => openMessages(shown ? shown + 1 : null), RETRY_MS);
      });
    }
    source.addEventListener("error", () => {
      badge("messages", false);
      if (source.readyState !== EventSource.CLOSED) return;
      // Closed on an HTTP error: if it never opened, ?from= may be older
      // than the member keeps (410), so ask for new deliveries only.
      const next = opened && shown ? shown + 1 : null;
      setTimeout(() => openMessages(next), RETRY_MS);
    });
  }

  openStatus();
})();
