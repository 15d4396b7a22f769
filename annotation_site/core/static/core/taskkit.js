// The loop every rater task page shares: the first task, the next one prefetched while the rater works,
// submit, skip, nothing left. The page draws its task and form; the API paths come from the page's
// <body data-next-url data-submit-url data-skip-url> (the last two with 0 standing for the task's id).
//
// An answer the rater gave is kept in localStorage, with its idempotency key, from the moment it is given
// until the server acknowledges it: a database restart or a dropped connection only delays it (the page
// says it is still saving and asks again, backing off to every 10 s), a reload sends it again, and because
// it always goes with the same key the server stores it at most once. A refusal with a reason (a 4xx other
// than 401) is final: the page shows it and the answer is dropped.
"use strict";

window.TaskKit = (function () {
  const FIRST_RETRY_MS = 500;
  const LONGEST_PREFETCH_WAIT_MS = 3000;
  const LONGEST_RETRY_MS = 10000;
  const SIGNED_OUT = "Signed out: sign in again in another tab and this page goes on (nothing is lost).";
  const $ = (id) => document.getElementById(id);

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // One request. A failure to reach the server, or a success whose body was lost on the way, is status 0.
  async function post(url, body) {
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
        body: JSON.stringify(body || {}),
      });
      const data = response.status === 204 ? null : await response.json().catch(() => null);
      if (response.ok && response.status !== 204 && data === null) throw new Error("the answer was cut off");
      return {status: response.status, data, reason: response.headers.get("X-RealQA-Reason")};
    } catch (error) {
      return {status: 0, data: {detail: "The server cannot be reached: " + error.message}, reason: null};
    }
  }

  // Worth asking again: nothing reached a decision (no connection, the server or its database away,
  // throttled), or the session ran out and the rater can sign in again in another tab.
  function transient(status) {
    return status === 0 || status === 401 || status === 408 || status === 429 || status >= 500;
  }

  function refusalText(response) {
    const data = response.data;
    if (data && typeof data.detail === "string") return data.detail;
    if (data && typeof data === "object") {
      return Object.entries(data).map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`).join(" · ");
    }
    return "refused (" + response.status + ")";
  }

  function pause(ms) {
    // Coming back online cuts the wait short.
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); window.removeEventListener("online", done); resolve(); };
      const timer = setTimeout(done, ms);
      window.addEventListener("online", done);
    });
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }

  function setStatus(text) {
    const status = $("save-status");
    status.textContent = text;
    status.hidden = !text;
  }

  // Asks until the server decides, saying meanwhile that it is `waiting`.
  async function persist(url, body, waiting) {
    for (let delay = FIRST_RETRY_MS; ; delay = Math.min(delay * 2, LONGEST_RETRY_MS)) {
      const response = await post(url, body);
      if (!transient(response.status)) {
        setStatus("");
        return response;
      }
      setStatus(response.status === 401 ? SIGNED_OUT : waiting);
      await pause(delay);
    }
  }

  // Answers not yet acknowledged, by idempotency key. `name` tells the rater and the page apart: several
  // raters may share a browser. Without storage (a private window, a full quota) an answer is still
  // retried for as long as the page is open.
  function unsentStore(name) {
    const prefix = "realqa.unsent." + name + ".";
    const attempt = (action, fallback) => { try { return action(); } catch (error) { return fallback; } };
    return {
      keep: (entry) => attempt(() => localStorage.setItem(prefix + entry.body.idempotency_key, JSON.stringify(entry))),
      forget: (entry) => attempt(() => localStorage.removeItem(prefix + entry.body.idempotency_key)),
      all: () => attempt(() => Object.keys(localStorage).filter((key) => key.startsWith(prefix))
        .map((key) => JSON.parse(localStorage.getItem(key)))
        .sort((a, b) => a.savedAt - b.savedAt), []),
    };
  }

  function taskUrl(template, id) {
    const parts = template.split("/");
    parts[parts.lastIndexOf("0")] = String(id);
    return parts.join("/");
  }

  // `page` draws: show(task) a new task on a reset form; photos(task) its photo URLs, to prefetch;
  // doneTexts {reason: text} for the end; skipReasons [{value, label}]; invalid(data) shows a 400 next to
  // the page's fields and says whether it did; acknowledged(data, goOn), if given, runs before moving on.
  function page(options) {
    const urls = document.body.dataset;
    const unsent = unsentStore(urls.unsent);
    const state = {current: null, upcoming: null, prefetching: null, shownAt: 0, busy: false, done: 0};

    function showError(text) {
      const errors = $("errors");
      errors.textContent = text || "";
      errors.hidden = !text;
    }

    function show(task) {
      state.current = task;
      state.shownAt = performance.now();
      showError("");
      options.show(task);
      const pending = prefetch().finally(() => { if (state.prefetching === pending) state.prefetching = null; });
      state.prefetching = pending;
    }

    // A submit or skip that reached the server while the prefetch was still leasing the next photo could
    // be told "nothing left" although that lease is the rater's: the server looked for held leases before
    // the prefetch had stored it, and for free photos after. So an answer waits for the prefetch, briefly:
    // a hung connection must not hold the answer back (it is kept and retried all the same).
    function prefetched() {
      return state.prefetching ? Promise.race([state.prefetching, pause(LONGEST_PREFETCH_WAIT_MS)]) : Promise.resolve();
    }

    async function prefetch() {
      const shownId = state.current.id;
      const response = await post(urls.nextUrl, {exclude: [shownId]});
      if (state.current && state.current.id === shownId && response.status === 200) {
        state.upcoming = response.data;
        options.photos(state.upcoming).forEach((url) => { const image = new Image(); image.src = url; });
      }
    }

    function showDone(reason) {
      state.current = null;
      $("done-reason").textContent = options.doneTexts[reason] || reason || "";
      $("done").hidden = false;
    }

    function advance(next, reason) {
      if (next) show(state.upcoming && state.upcoming.id === next.id ? state.upcoming : next);
      else showDone(reason);
      state.upcoming = null;
    }

    async function loadFirst() {
      const response = await persist(urls.nextUrl, {}, "Loading… (offline, retrying)");
      if (response.status === 200) show(response.data);
      else if (response.status === 204) showDone(response.reason);
      else showDone(refusalText(response));
    }

    // `fields` is the page's part of the body; the key and the time on task are added here.
    async function submit(fields) {
      if (!state.current || state.busy) return;
      state.busy = true;
      const task = state.current;
      if (!task.idempotencyKey) task.idempotencyKey = newKey();
      const body = {...fields, idempotency_key: task.idempotencyKey, seconds_spent: Math.round(performance.now() - state.shownAt) / 1000};
      const entry = {url: taskUrl(urls.submitUrl, task.id), body, savedAt: Date.now()};
      unsent.keep(entry);
      await prefetched();
      const response = await persist(entry.url, entry.body, "Saving… (offline, retrying)");
      unsent.forget(entry);
      state.busy = false;
      if (response.status === 201 || response.status === 200) {
        state.done += 1;
        const goOn = () => advance(response.data.next, response.data.next_reason);
        if (options.acknowledged) options.acknowledged(response.data, goOn);
        else goOn();
      } else if (!(response.status === 400 && options.invalid(response.data || {}))) {
        showError("The answer could not be stored: " + refusalText(response));
        if (response.status === 409 || response.status === 404) setTimeout(loadFirst, 1500);  // gone: move on
      }
    }

    async function skip(reason) {
      $("skip-dialog").hidden = true;
      if (!state.current || state.busy) return;
      state.busy = true;
      await prefetched();
      const response = await persist(taskUrl(urls.skipUrl, state.current.id), {reason}, "Skipping… (offline, retrying)");
      state.busy = false;
      if (response.status === 200) advance(response.data, null);
      else if (response.status === 204) advance(null, response.reason);
      else {
        showError("Skipping failed: " + refusalText(response));
        if (response.status === 409 || response.status === 404) setTimeout(loadFirst, 1500);
      }
    }

    function openSkip() {
      if (!state.current || state.busy) return;
      const list = $("skip-reasons");
      list.textContent = "";
      options.skipReasons.forEach((reason, i) => {
        const item = document.createElement("li");
        item.innerHTML = "<kbd></kbd> ";
        item.querySelector("kbd").textContent = String(i + 1);
        item.appendChild(document.createTextNode(reason.label));
        item.addEventListener("click", () => skip(reason.value));
        list.appendChild(item);
      });
      $("skip-dialog").hidden = false;
    }

    // While the skip dialog is open it takes every key: a number picks a reason, Esc goes back.
    function skipDialogKey(event) {
      if ($("skip-dialog").hidden) return false;
      const index = Number(event.key) - 1;
      if (event.key === "Escape") $("skip-dialog").hidden = true;
      else if (index >= 0 && index < options.skipReasons.length) skip(options.skipReasons[index].value);
      event.preventDefault();
      return true;
    }

    // What an earlier visit of the page left unsent goes first, then the first task.
    async function start() {
      const refused = [];
      for (const entry of unsent.all()) {
        const response = await persist(entry.url, entry.body, "Saving your last answer… (offline, retrying)");
        unsent.forget(entry);
        if (response.status !== 200 && response.status !== 201) refused.push(refusalText(response));
      }
      await loadFirst();
      if (refused.length) showError("Your last answer could not be stored: " + refused.join(" · "));
    }

    return {state, start, submit, openSkip, skipDialogKey, showError};
  }

  return {page};
})();
