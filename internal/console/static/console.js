// hookgate console: the little the pages need beyond HTML. Every page
// works without it, save the live parts. It never builds HTML from data:
// what it inserts is HTML the server rendered with html/template (every
// value from an event escaped), and the CSP forbids inline script.
"use strict";

(function () {
  const csrf = (document.querySelector('meta[name="csrf"]') || {}).content || "";

  // post sends a console form's fields as the console's scripts do: with
  // the CSRF header, asking for JSON.
  async function post(url, fields) {
    const body = new URLSearchParams(fields);
    const resp = await fetch(url, {
      method: "POST", body, credentials: "same-origin",
      headers: { "X-Hookgate-CSRF": csrf, "Accept": "application/json" },
    });
    let v = {};
    try { v = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      throw new Error((v.error && v.error.message) || ("the console answered " + resp.status));
    }
    return v;
  }

  // Live refresh: an element with data-live-src is replaced by a fresh
  // rendering every data-live-every milliseconds while the tab is shown.
  document.querySelectorAll("[data-live-src]").forEach(function (el) {
    const src = el.dataset.liveSrc;
    const every = parseInt(el.dataset.liveEvery || "2000", 10);
    const state = document.getElementById("live-state");
    async function refresh() {
      if (document.hidden) { return; }
      try {
        const resp = await fetch(src, { credentials: "same-origin", headers: { "Accept": "text/html" } });
        if (resp.status === 401) { location.reload(); return; }
        if (!resp.ok) { throw new Error(resp.status); }
        el.innerHTML = await resp.text();
        el.dataset.refreshed = String((parseInt(el.dataset.refreshed || "0", 10)) + 1);
        if (state) { state.textContent = "live, updated " + new Date().toLocaleTimeString(); }
      } catch (e) {
        if (state) { state.textContent = "not updating: hookgate did not answer"; }
      }
    }
    setInterval(refresh, every);
  });

  // Replay all of a target, in steps of 100, with progress.
  document.querySelectorAll("form[data-replay-all]").forEach(function (form) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const total = parseInt(form.dataset.replayAll, 10) || 0;
      const bar = form.querySelector("progress");
      const text = form.querySelector(".progress-text");
      const button = form.querySelector("button");
      button.disabled = true;
      bar.hidden = false;
      let done = 0;
      try {
        for (;;) {
          const v = await post(form.action, { target: form.elements.target.value, limit: "100" });
          done += v.replayed;
          bar.max = Math.max(total, done + v.remaining);
          bar.value = done;
          text.textContent = "Replayed " + done + " of " + bar.max;
          if (v.remaining === 0 || v.replayed === 0) { break; }
        }
        location.assign("/ui/dead?" + (form.elements.back.value ? form.elements.back.value + "&" : "") + "replayed=" + done);
      } catch (e) {
        text.textContent = "Stopped after " + done + ": " + e.message;
        button.disabled = false;
      }
    });
  });

  // Replay the selected dead letters one by one, with progress. The
  // per-row buttons are plain form posts.
  document.querySelectorAll("form[data-replay-selected]").forEach(function (form) {
    form.addEventListener("submit", async function (ev) {
      if (ev.submitter && ev.submitter.hasAttribute("formaction")) { return; }
      ev.preventDefault();
      const ids = Array.from(form.querySelectorAll('input[name="id"]:checked')).map(function (c) { return c.value; });
      const bar = form.querySelector("progress");
      const text = form.querySelector(".progress-text");
      if (ids.length === 0) { text.textContent = "Select the dead letters to replay first."; return; }
      bar.hidden = false;
      bar.max = ids.length;
      let ok = 0, failed = 0;
      for (const id of ids) {
        try { await post("/ui/dead/" + encodeURIComponent(id) + "/replay", {}); ok++; } catch (e) { failed++; }
        bar.value = ok + failed;
        text.textContent = "Replayed " + ok + " of " + ids.length + (failed ? " (" + failed + " failed)" : "");
      }
      location.assign("/ui/dead?" + (form.elements.back.value ? form.elements.back.value + "&" : "") + "replayed=" + ok + (failed ? "&failed=" + failed : ""));
    });
  });

  // Live tail: server-sent events, one rendered row each.
  const table = document.querySelector("table[data-stream]");
  if (table) {
    const tbody = table.tBodies[0];
    const routeSel = document.getElementById("t-route");
    const outcomeSel = document.getElementById("t-outcome");
    const pause = document.getElementById("t-pause");
    const state = document.getElementById("t-state");
    const maxRows = 500;
    let es = null, last = "", paused = false;

    function matches(tr) {
      return (!routeSel.value || tr.dataset.route === routeSel.value) &&
        (!outcomeSel.value || tr.dataset.outcome === outcomeSel.value);
    }
    function filter() {
      Array.from(tbody.rows).forEach(function (tr) { tr.classList.toggle("hidden", !matches(tr)); });
    }
    function open() {
      const url = table.dataset.stream + (last ? "?after=" + encodeURIComponent(last) : "");
      es = new EventSource(url);
      es.onopen = function () { state.textContent = "live"; };
      es.onerror = function () { state.textContent = "reconnecting…"; };
      es.addEventListener("row", function (e) {
        last = e.lastEventId;
        tbody.insertAdjacentHTML("afterbegin", e.data);
        const tr = tbody.rows[0];
        tr.classList.toggle("hidden", !matches(tr));
        while (tbody.rows.length > maxRows) { tbody.deleteRow(-1); }
      });
    }
    routeSel.addEventListener("change", filter);
    outcomeSel.addEventListener("change", filter);
    pause.addEventListener("click", function () {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      pause.textContent = paused ? "Resume" : "Pause";
      if (paused) {
        es.close();
        state.textContent = "paused";
      } else {
        open(); // from the last event shown: nothing is missed
      }
    });
    open();
  }
})();
