// Live board: one EventSource per page; each notice names the pipeline that moved (and the event's position);
// the panels fed by it are fetched again as HTML from /panel/..., at most one request per panel at a time.
(() => {
  "use strict";
  const status = document.getElementById("live");
  if (!status) return; // the sign-in page
  const state = new Map(); // panel id -> {busy, again, position, trailing}

  function panels(service) {
    return [...document.querySelectorAll("section.panel")].filter(
      (el) => service === "*" || el.dataset.on === "*" || el.dataset.on === service
    );
  }

  async function refresh(id) {
    const s = state.get(id);
    const el = document.getElementById("panel-" + id);
    if (!el) return;
    s.busy = true;
    s.again = false;
    const q = new URLSearchParams(el.dataset.query);
    if (s.position) q.set("position", s.position);
    try {
      const r = await fetch(`/panel/${el.dataset.page}/${el.dataset.panel}?${q}`, { credentials: "same-origin" });
      if (r.status === 401) { window.location.reload(); return; }
      if (r.ok) {
        const tpl = document.createElement("template");
        tpl.innerHTML = (await r.text()).trim();
        const fresh = tpl.content.firstElementChild;
        fresh.dataset.updated = new Date().toISOString();
        el.replaceWith(fresh);
        announce(fresh);
      }
    } catch (e) {
      // the network blinked: the next notice tries again
    } finally {
      s.busy = false;
      if (s.again) schedule(id, 0);
    }
  }

  // screen readers hear which panels changed (the aria-live region in base.html), once per burst of updates
  const region = document.getElementById("announce");
  const changed = new Set();
  let telling = null;
  function announce(el) {
    const title = el.querySelector("h2");
    if (!region || !title) return;
    changed.add(title.textContent.trim());
    if (telling) return;
    telling = setTimeout(() => {
      region.textContent = `${region.dataset.updated}: ${[...changed].join(", ")}`;
      changed.clear();
      telling = null;
    }, 1000);
  }

  function schedule(id, delay) {
    const s = state.get(id);
    if (s.busy) { s.again = true; return; }
    if (s.timer) return; // one is due already: a steady stream of notices must not keep postponing it
    s.timer = setTimeout(() => { s.timer = null; refresh(id); }, delay);
  }

  const badge = document.getElementById("alert-count");
  let counting = null;
  function recount() { // the nav's count of active alerts, once per burst of alert notices
    if (!badge || counting) return;
    counting = setTimeout(async () => {
      counting = null;
      try {
        const r = await fetch("/alerts/count", { credentials: "same-origin" });
        if (r.ok) {
          const { count } = await r.json();
          badge.textContent = count;
          badge.dataset.count = count;
        }
      } catch (e) { /* the next notice tries again */ }
    }, 300);
  }

  function onNotice(n) {
    if (n.service === "alerts" || n.service === "*") recount();
    for (const el of panels(n.service)) {
      const id = el.dataset.panel;
      if (!state.has(id)) state.set(id, {});
      const s = state.get(id);
      if (el.dataset.waits === "1" && Number.isInteger(n.position)) s.position = Math.max(s.position || 0, n.position);
      schedule(id, 150);
      // a read model that cannot be waited for may apply the event just after: look again a little later
      if (el.dataset.waits !== "1") {
        (s.trailing || []).forEach(clearTimeout);
        s.trailing = [1500, 5000].map((ms) => setTimeout(() => schedule(id, 0), ms));
      }
    }
  }

  // an action of this page changed something (static/actions.js): its panels now, after the API's position
  document.addEventListener("board:changed", (e) => {
    const { service, position } = e.detail || {};
    onNotice({ service: service || "*", position: Number.isInteger(position) ? position : undefined });
  });

  let source;
  function connect() {
    source = new EventSource("/events");
    source.onopen = () => {
      status.textContent = status.dataset.on;
      status.classList.add("on");
      document.body.dataset.live = "1";
    };
    source.onmessage = (m) => {
      try { onNotice(JSON.parse(m.data)); } catch (e) { /* not a notice */ }
    };
    source.onerror = () => {
      status.textContent = status.dataset.off;
      status.classList.remove("on");
      document.body.dataset.live = "0";
    };
  }
  connect();
})();
