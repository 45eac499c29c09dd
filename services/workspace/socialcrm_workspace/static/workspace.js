// The workspace's only script (served from the package; the CSP allows no other).
// Live countdowns, live lists by Server-Sent Events, keyboard shortcuts.
// Customer text is never built into HTML here: fragments come escaped from the server.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;

  function pad(n) { return String(n).padStart(2, "0"); }

  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll("time.countdown[data-deadline-ms]")) {
      let left = Math.round((Number(el.dataset.deadlineMs) - now) / 1000);
      const overdue = left < 0;
      if (overdue) { left = -left; }
      const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = (overdue ? "-" : "") + h + ":" + pad(m) + ":" + pad(s);
      el.classList.toggle("overdue", overdue);
      el.title = overdue ? body.dataset.overdue : "";
    }
  }
  tick();
  setInterval(tick, 1000);

  function typing(event) {
    const t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" ||
      t.isContentEditable);
  }

  // --- the queue ---------------------------------------------------------------------
  let selected = null;

  function rows() { return Array.from(document.querySelectorAll("#rows tr.item")); }

  function mark(row) {
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
  }

  function select(row) {
    for (const r of rows()) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); }
    selected = row ? row.dataset.eventId : null;
    if (row) {
      mark(row);
      const link = row.querySelector("a.open");
      if (link) { link.focus(); }
    }
  }

  function selectedRow() {
    return rows().find((r) => r.dataset.eventId === selected) || null;
  }

  function move(step) {
    const all = rows();
    if (!all.length) { return; }
    const at = all.indexOf(selectedRow());
    const next = at < 0 ? 0 : Math.min(all.length - 1, Math.max(0, at + step));
    select(all[next]);
  }

  let refreshing = null;
  function refreshRows() {
    const live = document.getElementById("live");
    if (!live || refreshing) { return; }
    refreshing = setTimeout(async () => {
      try {
        const answer = await fetch(live.dataset.rowsUrl, { credentials: "same-origin" });
        if (answer.ok) {
          document.getElementById("rows").innerHTML = await answer.text();
          document.getElementById("count").textContent = String(rows().length);
          // The selection survives the refresh, for the eye and for screen readers alike;
          // the focus stays where the agent left it (a filter being typed in, say).
          const keep = selectedRow();
          if (keep) { mark(keep); }
          live.dataset.refreshed = String(Date.now());
          tick();
        }
      } finally {
        refreshing = null;
      }
    }, 250);
  }

  // --- the conversation --------------------------------------------------------------
  let refreshingOutcome = null;
  function refreshOutcome() {
    const outcome = document.getElementById("outcome");
    if (!outcome || refreshingOutcome) { return; }
    refreshingOutcome = setTimeout(async () => {
      try {
        const answer = await fetch(outcome.dataset.url, { credentials: "same-origin" });
        if (answer.ok) { outcome.innerHTML = await answer.text(); }
      } finally {
        refreshingOutcome = null;
      }
    }, 250);
  }

  function concernsThisPage(change) {
    const post = document.getElementById("post");
    return post && (change.event_id === post.dataset.eventId ||
      change.conversation_id === post.dataset.conversationId || change.kind === "resync");
  }

  if (page === "queue" || page === "conversation") {
    const events = new EventSource("/events");
    events.addEventListener("open", () => {
      // A stream (re)opened: what changed in between is fetched once.
      if (page === "queue") { refreshRows(); } else { refreshOutcome(); }
    });
    events.addEventListener("change", (message) => {
      if (page === "queue") { refreshRows(); return; }
      let change = {};
      try { change = JSON.parse(message.data); } catch (e) { return; }
      if (concernsThisPage(change)) { refreshOutcome(); }
    });
  }

  document.addEventListener("keydown", (event) => {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    const key = event.key;
    if (page === "queue") {
      const row = selectedRow();
      if (key === "j") { move(1); event.preventDefault(); }
      else if (key === "k") { move(-1); event.preventDefault(); }
      else if ((key === "Enter" || key === "o") && row) {
        // The selected row's link has the focus: without preventDefault, Enter would also
        // follow it, and one navigation aborts the other (seen once under load).
        event.preventDefault();
        location.href = row.dataset.href;
      }
      else if (key === "r" && row) { location.href = row.dataset.href + "#reply-text"; }
      else if (key === "e" && row) {
        const form = row.querySelector("form.resolve");
        if (form) { form.submit(); }
      }
    } else if (page === "conversation") {
      if (key === "j" || key === "k") {
        const link = document.getElementById(key === "j" ? "next-link" : "prev-link");
        if (link) { location.href = link.href; }
      } else if (key === "r") {
        const text = document.getElementById("reply-text");
        if (text) { text.focus(); event.preventDefault(); }
      } else if (key === "e") {
        const form = document.getElementById("resolve-form");
        if (form) { form.submit(); }
      }
    }
  });

  if (page === "conversation" && location.hash === "#reply-text") {
    const text = document.getElementById("reply-text");
    if (text) { text.focus(); }
  }
})();
