// The dashboard's live grid: polls the snapshot, updates each cell in place (focus and selection stay), and sends
// the fleet actions. Without JavaScript the page still works: the form posts and the server confirms stop/restart.
(function () {
  "use strict";
  const grid = document.getElementById("fleet");
  const status = document.getElementById("live-status");
  if (!grid) return;
  const every = Number(grid.dataset.poll) || 1000;

  function setText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  function applyCell(name, cell) {
    const element = grid.querySelector('[data-worker="' + CSS.escape(name) + '"]');
    if (!element) return;
    element.dataset.state = cell.state;
    if (element.title !== cell.display.summary) element.title = cell.display.summary;
    const badge = element.querySelector('[data-field="state"]');
    badge.className = "badge state-" + cell.state;
    for (const [field, text] of Object.entries(cell.display)) {
      setText(element.querySelector('[data-field="' + field + '"]'), text);
    }
    const bar = element.querySelector("progress");
    bar.max = cell.total || 1;
    bar.value = cell.done;
    element.querySelector('[data-field="alerts"]').hidden = !cell.alerts;
    element.querySelector('[data-field="checks"]').classList.toggle("failing", cell.failed.length > 0);
    element.querySelector('[data-field="batches"]').hidden = !cell.batches;
    const gold = element.querySelector('[data-field="gold"]');
    gold.hidden = !cell.gold;
    gold.classList.toggle("failing", cell.gold_failing);
  }

  // The alert banner: one line per kind with new alerts, rebuilt only when the groups change (a focused button
  // keeps its focus while nothing changes).
  const alertList = document.getElementById("open-alerts");
  const alertForms = document.getElementById("alert-forms");
  let shownAlerts = null;

  function alertLine(group) {
    const item = document.createElement("li");
    item.className = "alert-group";
    item.dataset.kind = group.kind;
    item.title = group.message;
    const text = document.createElement("span");
    text.className = "alert-text";
    const headline = document.createElement(group.link ? "a" : "strong");
    headline.dataset.field = "headline";
    headline.textContent = group.headline + (group.link ? " →" : "");
    if (group.link) headline.href = group.link;
    const detail = document.createElement("span");
    detail.className = "muted";
    detail.dataset.field = "detail";
    detail.textContent = (group.workers.length ? group.workers.join(", ") + " · " : "") + "latest " + group.latest +
      " — " + group.message;
    text.append(headline, " ", detail);
    item.append(text);
    if (alertForms) {
      const forms = alertForms.content.firstElementChild.cloneNode(true);
      forms.querySelectorAll('input[name="kind"]').forEach(function (input) { input.value = group.kind; });
      forms.querySelectorAll('input[name="up_to"]').forEach(function (input) { input.value = group.up_to; });
      const select = forms.querySelector("select");
      select.id = "snooze-" + group.kind;
      forms.querySelector("label").htmlFor = select.id;
      item.append(" ", forms);
    }
    return item;
  }

  function applyAlerts(groups) {
    const fresh = groups.filter(function (group) { return group.new > 0; });
    const signature = JSON.stringify(groups);
    if (signature === shownAlerts) return;
    shownAlerts = signature;
    alertList.replaceChildren(...fresh.map(alertLine));
    document.getElementById("no-alerts").hidden = fresh.length > 0;
    const handled = document.getElementById("handled-alerts");
    handled.replaceChildren(...groups.filter(function (group) { return group.acknowledged || group.snoozed; })
      .map(function (group) {
        const part = document.createElement("span");
        part.dataset.kind = group.kind;
        const said = [];
        if (group.acknowledged) said.push(group.acknowledged + " acknowledged");
        if (group.snoozed) said.push(group.snoozed + " snoozed until " + group.snoozed_until);
        part.textContent = group.kind + ": " + said.join(", ");
        return part;
      }));
  }

  function apply(data) {
    // Another run became current: which cells take part, and every total, changed with it.
    if (data.run !== grid.dataset.run) {
      window.location.reload();
      return;
    }
    for (const [name, cell] of Object.entries(data.cells)) applyCell(name, cell);
    for (const [field, value] of Object.entries(data.totals)) {
      setText(document.querySelector('[data-total="' + field + '"]'), String(value));
    }
    applyAlerts(data.alerts);
    setText(status, "Live · updated " + new Date(data.at * 1000).toLocaleTimeString());
  }

  let timer = null;
  async function poll() {
    clearTimeout(timer);
    try {
      const response = await fetch(grid.dataset.live, {headers: {Accept: "application/json"}, cache: "no-store",
                                                        credentials: "same-origin"});
      if (response.status === 401 || response.status === 403) {
        setText(status, "Your session ended: reload the page to log in again.");
        return;
      }
      apply(await response.json());
    } catch (error) {
      setText(status, "Connection lost; retrying…");
    }
    timer = setTimeout(poll, every);
  }
  timer = setTimeout(poll, every);

  // Acknowledge or snooze a kind of alert without leaving the page; the next poll shows the result.
  const alertResult = document.getElementById("alert-result");
  alertList.addEventListener("submit", async function (event) {
    event.preventDefault();
    const form = event.target;
    const response = await fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                                               headers: {Accept: "application/json"}});
    const answer = await response.json().catch(function () { return {error: "HTTP " + response.status}; });
    setText(alertResult, response.ok ? answer.message : "Refused: " + (answer.detail || answer.error || response.status));
    poll();
  });

  // Charts: loaded after the page, refreshed each minute, over the range last chosen.
  const charts = document.getElementById("charts");
  let chartsRange = "hour";
  let chartsTimer = null;
  async function loadCharts() {
    clearTimeout(chartsTimer);
    try {
      const response = await fetch(charts.dataset.src + "?range=" + encodeURIComponent(chartsRange),
                                   {credentials: "same-origin"});
      if (response.ok) charts.innerHTML = await response.text();
    } catch (error) { /* the next refresh tries again */ }
    chartsTimer = setTimeout(loadCharts, 60000);
  }
  charts.addEventListener("click", function (event) {
    const link = event.target.closest("[data-range]");
    if (!link) return;
    event.preventDefault();
    chartsRange = link.dataset.range;
    loadCharts();
  });
  loadCharts();

  // Selection: all, none, a row (annotator) or a column (domain).
  const form = document.getElementById("fleet-actions");
  const boxes = function (selector) { return Array.from(document.querySelectorAll('input[name="workers"]' + selector)); };
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-select]");
    if (!button) return;
    const [kind, value] = button.dataset.select.split(":");
    let chosen = boxes("");
    if (kind === "none") { chosen.forEach(function (box) { box.checked = false; }); return; }
    if (kind === "annotator" || kind === "domain") chosen = boxes('[data-' + kind + '="' + CSS.escape(value) + '"]');
    const check = kind === "all" || !chosen.every(function (box) { return box.checked; });
    chosen.forEach(function (box) { box.checked = check; });
  });

  // Actions: confirm the ones that interrupt work, then post and report each worker's result.
  const result = document.getElementById("action-result");
  const dialog = document.getElementById("confirm-dialog");
  const needConfirm = (form && form.dataset.confirm ? form.dataset.confirm.split(",") : []);

  function confirmFirst(operation, names) {
    if (!needConfirm.includes(operation)) return Promise.resolve(true);
    document.getElementById("confirm-title").textContent = "Confirm: " + operation;
    document.getElementById("confirm-text").textContent =
      operation + " " + names.length + " worker(s): " + names.join(", ") + "? Their running tasks finish first.";
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function () { resolve(dialog.returnValue === "confirm"); }, {once: true});
      dialog.showModal();
    });
  }

  async function send(operation, names) {
    const body = new FormData(form);
    body.set("op", operation);
    body.delete("workers");
    names.forEach(function (name) { body.append("workers", name); });
    body.set("confirmed", "yes");
    setText(result, operation + " " + names.length + " worker(s)…");
    const response = await fetch(form.action, {method: "POST", body: body, credentials: "same-origin",
                                               headers: {Accept: "application/json"}});
    const answer = await response.json().catch(function () { return {error: "HTTP " + response.status}; });
    if (!response.ok) {
      setText(result, "Refused: " + (answer.detail || answer.error || response.status));
      return;
    }
    setText(result, answer.results.map(function (r) {
      return operation + " " + r.worker + ": " + (r.ok ? "" : "FAILED ") + r.message;
    }).join(" · "));
  }

  if (form) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const operation = event.submitter && event.submitter.value;
      const names = boxes(":checked").map(function (box) { return box.value; });
      if (!names.length) { setText(result, "Select at least one worker first."); return; }
      if (await confirmFirst(operation, names)) await send(operation, names);
    });
  }
})();
