// The board's actions (services/web/actions): every form.action posts as JSON (the page stays; the API's refusal is
// said next to the form, a conflict shows the thing as it is now with "Try again"), and sales board cards are
// dragged to another column (native HTML5 drag-and-drop; its column's "Move to…" list and the card's "Move" button do the same by keyboard).
// Without this script the same forms post as plain HTML forms. After a change, "board:changed" (the API's
// position) makes app.js fetch the panels again; other browsers hear of it from the live stream.
(() => {
  "use strict";

  function status() {
    let el = document.getElementById("act-status");
    if (!el) {
      el = document.createElement("div");
      el.id = "act-status";
      el.className = "act-status";
      el.setAttribute("role", "status");
      el.setAttribute("aria-live", "polite");
      document.body.append(el);
    }
    return el;
  }

  // Where a refusal is said: beside the form on a page of its own; for a panel's form or a dragged card, in a box of
  // the page's own (a live refresh replaces the panels, and must not take the refusal with it).
  function whereFor(el) {
    if (!el.closest("section.panel")) return el.closest("article, section, .act") || el.parentElement;
    let box = document.getElementById("act-alerts");
    if (!box) {
      box = document.createElement("div");
      box.id = "act-alerts";
      box.className = "act-alerts";
      document.body.append(box);
    }
    return box;
  }

  function fieldsOf(form, submitter) {
    const out = {};
    for (const [k, v] of new FormData(form, submitter || undefined).entries()) out[k] = typeof v === "string" ? v : "";
    return out;
  }

  function newKey() {
    return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
  }

  async function send(actionId, fields) {
    const body = { ...fields, idempotency_key: newKey() }; // each send its own key: a retry is a new command
    const r = await fetch(`/act/${encodeURIComponent(actionId)}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": fields.csrf || "" },
      body: JSON.stringify(body),
    });
    if (r.status === 401) { window.location.reload(); return null; }
    try { return await r.json(); } catch (e) { return { ok: false, status: r.status, message: String(r.status) }; }
  }

  function changed(answer, service) {
    const position = answer && answer.answer ? answer.answer.position : undefined;
    document.dispatchEvent(new CustomEvent("board:changed", { detail: { service, position } }));
  }

  // What a refusal says, the thing as it is now (after a conflict), and "Try again" with its version.
  function show(where, answer, retry) {
    const box = document.createElement("div");
    box.className = answer.ok ? "act-result ok" : "act-result refused";
    box.setAttribute("role", answer.ok ? "status" : "alert");
    box.dataset.status = answer.status;
    box.dataset.rule = answer.rule || "";
    const p = document.createElement("p");
    p.textContent = answer.message || "";
    box.append(p);
    if (answer.detail) {
      const d = document.createElement("p");
      d.className = "detail";
      d.textContent = answer.detail;
      box.append(d);
    }
    const now = answer.current;
    if (now) {
      const dl = document.createElement("p");
      dl.className = "current";
      const stage = now.stage ? now.stage.name || now.stage.stage_id : now.status;
      const value = now.value && now.value.amount !== undefined ? ` · ${now.value.amount} ${now.value.currency || ""}` : "";
      const due = now.due_at ? ` · ${now.due_at}` : "";
      dl.textContent = `${(answer.texts && answer.texts.now) || ""}: ${stage || ""}${value}${due} (v${now.version})`;
      dl.dataset.version = now.version;
      dl.dataset.stage = now.stage ? now.stage.stage_id : "";
      box.append(dl);
    }
    if (retry && now && now.version !== undefined) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "retry";
      b.textContent = (answer.texts && answer.texts.retry) || "↻";
      b.addEventListener("click", () => { box.remove(); retry(String(now.version)); });
      box.append(b);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "quiet dismiss";
    close.textContent = (answer.texts && answer.texts.cancel) || "×";
    close.addEventListener("click", () => box.remove());
    if (!answer.ok) box.append(close);
    where.querySelectorAll(":scope > .act-result").forEach((old) => old.remove());
    where.append(box);
    if (!answer.ok) (box.querySelector("button.retry") || close).focus();
    return box;
  }

  async function run(actionId, fields, where, service) {
    status().textContent = "…";
    const answer = await send(actionId, fields);
    if (!answer) return;
    status().textContent = answer.message || "";
    if (answer.ok) {
      changed(answer, service);
      return answer;
    }
    show(where, answer, (version) => run(actionId, { ...fields, version }, where, service));
    return answer;
  }

  // Forms: post as JSON; on a page of the board (a panel's form) the panels refresh, elsewhere the page reloads.
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("action")) return;
    e.preventDefault();
    const fields = fieldsOf(form, e.submitter); // a card's "Move" button adds its card (id and version)
    const inPanel = form.closest("section.panel");
    const where = whereFor(form);
    const service = inPanel ? inPanel.dataset.on : "*";
    form.setAttribute("aria-busy", "true");
    const answer = await run(form.dataset.action, fields, where, service);
    form.removeAttribute("aria-busy");
    if (answer && answer.ok && !inPanel) window.location.assign(fields.back || window.location.href); // as without JS
  });

  // Drag-and-drop on the sales board: a card onto another column runs deal.move with the card's version.
  let dragged = null;
  document.addEventListener("dragstart", (e) => {
    const card = e.target instanceof Element ? e.target.closest("#panel-board article.card[data-version]") : null;
    if (!card) return;
    dragged = card;
    card.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", card.dataset.id);
  });
  document.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    document.querySelectorAll(".column.drop").forEach((c) => c.classList.remove("drop"));
  });
  document.addEventListener("dragover", (e) => {
    const column = dragged && e.target instanceof Element ? e.target.closest("#panel-board .column[data-stage]") : null;
    if (!column) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "move";
    document.querySelectorAll(".column.drop").forEach((c) => c !== column && c.classList.remove("drop"));
    column.classList.add("drop");
  });
  document.addEventListener("drop", async (e) => {
    const column = dragged && e.target instanceof Element ? e.target.closest("#panel-board .column[data-stage]") : null;
    if (!column) return;
    e.preventDefault();
    const card = dragged;
    column.classList.remove("drop");
    if (card.closest(".column") === column) return;
    const button = card.querySelector("button.move[name=card]");
    if (!button || !button.form) return;
    const fields = { ...fieldsOf(button.form, button), stage_id: column.dataset.stage, version: card.dataset.version };
    const from = card.parentElement;
    const next = card.nextSibling;
    column.append(card); // where it will be; the panel's refresh puts it where the API says it is
    const answer = await run("deal.move", fields, whereFor(card), "deals");
    if (answer && !answer.ok && card.isConnected) from.insertBefore(card, next); // refused: back where it was
  });

  // Cards of the sales board can be dragged (set again after each live refresh of the panel).
  function draggable() {
    document.querySelectorAll("#panel-board article.card[data-version]").forEach((c) => { c.draggable = true; });
  }
  draggable();
  new MutationObserver(draggable).observe(document.body, { childList: true, subtree: true });
})();
