// What the region and description pages share: the rater API, the photo flow (show, prefetch, submit,
// skip, nothing left) and the dialogs. Each page passes its own form through `hooks`.
"use strict";

window.GroundingTask = function (hooks) {
  const config = JSON.parse(document.getElementById("task-config").textContent);
  const $ = (id) => document.getElementById(id);
  const photo = $("photo");
  const answers = TaskKit.sender(document.body.dataset.unsent, $("save-status"));
  const state = {current: null, upcoming: null, shownAt: 0, busy: false, done: 0};

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(url, body, attempts = 3) {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
          body: JSON.stringify(body || {}),
        });
        if (response.status >= 500 && attempt < attempts) throw new Error("server error " + response.status);
        const data = response.status === 204 ? null : await response.json().catch(() => null);
        return {status: response.status, data, reason: response.headers.get("X-RealQA-Reason")};
      } catch (error) {
        // A dropped connection is retried with the same body (and so the same idempotency key).
        if (attempt >= attempts) return {status: 0, data: {detail: "The server cannot be reached: " + error.message}};
        await new Promise((resolve) => setTimeout(resolve, 400 * attempt));
      }
    }
  }

  function showError(text) {
    const errors = $("errors");
    errors.hidden = !text;
    errors.textContent = text || "";
  }

  function show(lease) {
    state.current = lease;
    photo.onload = () => { state.shownAt = performance.now(); hooks.onPhotoLoaded && hooks.onPhotoLoaded(); };
    photo.src = lease.image.url;
    if (photo.complete) state.shownAt = performance.now();
    $("counter").textContent = state.done ? `${state.done} done this session` : "";
    showError("");
    hooks.reset(lease);
    fetchUpcoming();
  }

  async function fetchUpcoming() {
    const shownId = state.current && state.current.id;
    const response = await api(config.urls.next, {exclude: [shownId]});
    if (state.current && state.current.id === shownId && response.status === 200) {
      state.upcoming = response.data;
      const img = new Image();
      img.src = state.upcoming.image.url;
    }
  }

  function showDone(reason) {
    state.current = null;
    const texts = {
      done: "Every photo has all the answers it needs. Thank you!",
      lease_limit: "Finish the photo you have open first.",
      closed: "This task is closed to you now.",
    };
    $("done-reason").textContent = texts[reason] || reason || "";
    $("done").hidden = false;
  }

  function advance(next, reason) {
    if (next) show(state.upcoming && state.upcoming.id === next.id ? state.upcoming : next);
    else showDone(reason);
    state.upcoming = null;
  }

  async function submit() {
    if (!state.current || state.busy) return;
    const body = hooks.payload();
    if (!body) return;  // the page showed what is missing
    state.busy = true;
    const lease = state.current;
    if (!lease.idempotencyKey) lease.idempotencyKey = TaskKit.newKey();
    body.idempotency_key = lease.idempotencyKey;
    body.seconds_spent = Math.round(performance.now() - state.shownAt) / 1000;
    const response = await answers.send(config.urls.submit.replace("{id}", lease.id), body);
    state.busy = false;
    if (response.status === 201 || response.status === 200) {
      state.done += 1;
      advance(response.data.next, response.data.next_reason);
    } else if (response.status === 400 && response.data && response.data.errors) {
      const rest = hooks.showErrors(response.data.errors);
      if (rest.length) showError(rest.join(" · "));
    } else {
      showError("The answer could not be stored: " + TaskKit.refusalText(response));
      if (response.status === 409 || response.status === 404) setTimeout(loadFirst, 1500);
    }
  }

  function openSkip() {
    if (!state.current) return;
    const list = $("skip-reasons");
    list.textContent = "";
    config.skipReasons.forEach((reason, i) => {
      const li = document.createElement("li");
      li.innerHTML = "<kbd></kbd> ";
      li.querySelector("kbd").textContent = String(i + 1);
      li.appendChild(document.createTextNode(reason.label));
      li.addEventListener("click", () => skip(reason.value));
      list.appendChild(li);
    });
    $("skip-dialog").hidden = false;
  }

  async function skip(reason) {
    $("skip-dialog").hidden = true;
    if (!state.current || state.busy) return;
    state.busy = true;
    const response = await api(config.urls.skip.replace("{id}", state.current.id), {reason});
    state.busy = false;
    if (response.status === 200) advance(response.data, null);
    else if (response.status === 204) advance(null, response.reason);
    else showError((response.data && response.data.detail) || "Skipping failed.");
  }

  async function loadFirst() {
    const response = await api(config.urls.next, {});
    if (response.status === 200) show(response.data);
    else if (response.status === 204) showDone(response.reason);
    else showDone((response.data && response.data.detail) || "This task is not available.");
  }

  // Dialog keys come first; the page gets every other key while a photo is on screen.
  document.addEventListener("keydown", (event) => {
    if (!$("keys").hidden) { if (event.key === "Escape" || event.key === "?") { $("keys").hidden = true; event.preventDefault(); } return; }
    if (!$("skip-dialog").hidden) {
      const index = Number(event.key) - 1;
      if (event.key === "Escape") $("skip-dialog").hidden = true;
      else if (index >= 0 && index < config.skipReasons.length) skip(config.skipReasons[index].value);
      event.preventDefault();
      return;
    }
    if (!state.current) return;
    if (state.busy) { event.preventDefault(); return; }  // keys typed during a submit would land on the old photo
    const typing = event.target && (event.target.tagName === "TEXTAREA" || event.target.tagName === "INPUT" || event.target.tagName === "SELECT");
    if (!typing && event.key === "?") { $("keys").hidden = false; event.preventDefault(); return; }
    if (!typing && (event.key === "x" || event.key === "X") && !event.ctrlKey && !event.metaKey) { openSkip(); event.preventDefault(); return; }
    hooks.onKey(event, typing);
  });
  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", openSkip);
  $("help-toggle").addEventListener("click", () => { $("keys").hidden = false; });

  async function start() {
    const refused = await answers.resendUnsent();
    await loadFirst();
    if (refused.length) showError("Your last answer could not be stored: " + refused.map(TaskKit.refusalText).join(" · "));
  }

  return {config, state, submit, start, showError};
};
