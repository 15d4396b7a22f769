// The comparison page: two photos side by side, five levels, everything by keyboard.
// It talks to the rater API only, so the page and scripts follow the same rules.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("compare-config").textContent);
  const $ = (id) => document.getElementById(id);
  const app = $("app");
  const left = $("left");
  const right = $("right");
  const levelsBox = $("levels");
  const errors = $("errors");
  const answers = TaskKit.sender(document.body.dataset.unsent, $("save-status"));

  let current = null;     // the pair on screen
  let upcoming = null;    // the prefetched one
  let selected = null;    // index into config.levels
  let shownAt = 0;
  let busy = false;
  let answered = 0;
  let idempotencyKey = null;

  // ---------------------------------------------------------------- API
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

  // ---------------------------------------------------------------- levels
  function buildLevels() {
    config.levels.forEach((level, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "option";
      button.dataset.level = level.value;
      button.setAttribute("role", "radio");
      button.tabIndex = -1;
      button.innerHTML = "<span><kbd></kbd> <span class=\"text\"></span></span><span class=\"word\"></span>";
      button.querySelector("kbd").textContent = String(index + 1);
      button.querySelector(".text").textContent = level.label;
      button.querySelector(".word").textContent = "right is " + level.word;
      button.addEventListener("click", () => choose(index));
      levelsBox.appendChild(button);
    });
  }

  function choose(index) {
    selected = Math.max(0, Math.min(config.levels.length - 1, index));
    levelsBox.querySelectorAll(".option").forEach((button, i) => {
      button.classList.toggle("selected", i === selected);
      button.setAttribute("aria-checked", i === selected ? "true" : "false");
    });
    showError("");
  }

  function showError(message) {
    errors.textContent = message;
    errors.hidden = !message;
  }

  // ---------------------------------------------------------------- pairs
  function preload(pair) {
    [pair.left.url, pair.right.url].forEach((url) => { const image = new Image(); image.src = url; });
  }

  function show(pair) {
    current = pair;
    idempotencyKey = TaskKit.newKey();
    selected = null;
    levelsBox.querySelectorAll(".option").forEach((button) => { button.classList.remove("selected"); button.setAttribute("aria-checked", "false"); });
    $("question").textContent = pair.question;
    left.src = pair.left.url;
    right.src = pair.right.url;
    app.dataset.assignment = String(pair.id);
    shownAt = performance.now();
    $("counter").textContent = answered ? answered + " compared" : "";
    showError("");
  }

  function finish(reason) {
    current = null;
    app.dataset.assignment = "";
    const texts = {
      done: "Every pair has its answers for now. Thank you!",
      lease_limit: "You hold as many pairs as you may; finish or let them expire first.",
      closed: "This comparison task is closed to you.",
    };
    $("done-reason").textContent = texts[reason] || reason || "";
    $("done").hidden = false;
  }

  async function prefetch() {
    if (!current) return;
    const result = await api(config.urls.next, {exclude: [current.id]});
    upcoming = result.status === 200 ? result.data : null;
    if (upcoming) preload(upcoming);
  }

  async function start() {
    const refused = await answers.resendUnsent();
    const result = await api(config.urls.next, {exclude: []});
    if (result.status === 200) { show(result.data); prefetch(); }
    else if (result.status === 204) finish(result.reason);
    else showError((result.data && result.data.detail) || "Could not load a pair.");
    if (refused.length) showError("Your last answer could not be stored: " + refused.map(TaskKit.refusalText).join(" · "));
  }

  function advance(next, reason) {
    if (next) {
      show(upcoming && upcoming.id === next.id ? upcoming : next);
      upcoming = null;
      prefetch();
    } else finish(reason);
  }

  async function submit() {
    if (busy || !current) return;
    if (selected === null) { showError("Choose an answer first: keys 1 to 5, or ← →."); return; }
    busy = true;
    const body = {
      level: config.levels[selected].value,
      idempotency_key: idempotencyKey,
      seconds_spent: Math.round(performance.now() - shownAt) / 1000,
      client: {screen: `${window.screen.width}x${window.screen.height}`, viewport: `${window.innerWidth}x${window.innerHeight}`},
    };
    const result = await answers.send(config.urls.submit.replace("{id}", current.id), body);
    busy = false;
    if (result.status === 201 || result.status === 200) {
      answered += 1;
      advance(result.data.next, result.data.next_reason);
    } else if (result.status === 409 || result.status === 404) {
      // Gone or answered elsewhere: move on to whatever the server has next.
      showError((result.data && result.data.detail) || "This pair is no longer yours.");
      const next = await api(config.urls.next, {exclude: []});
      if (next.status === 200) advance(next.data); else finish(next.reason);
    } else {
      showError((result.data && result.data.level) || TaskKit.refusalText(result));
    }
  }

  // ---------------------------------------------------------------- skip
  function openSkip() {
    if (!current) return;
    const list = $("skip-reasons");
    list.textContent = "";
    config.skipReasons.forEach((reason) => {
      const item = document.createElement("li");
      item.textContent = reason.label;
      item.addEventListener("click", () => skip(reason.value));
      list.appendChild(item);
    });
    $("skip-dialog").hidden = false;
  }

  async function skip(reason) {
    $("skip-dialog").hidden = true;
    if (busy || !current) return;
    busy = true;
    const result = await api(config.urls.skip.replace("{id}", current.id), {reason});
    busy = false;
    if (result.status === 200) advance(result.data);
    else if (result.status === 204) finish(result.reason);
    else showError((result.data && result.data.detail) || "Could not skip.");
  }

  // ---------------------------------------------------------------- keyboard
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const skipOpen = !$("skip-dialog").hidden;
    const keysOpen = !$("keys").hidden;
    if (event.key === "Escape") { $("skip-dialog").hidden = true; $("keys").hidden = true; event.preventDefault(); return; }
    if (skipOpen) {
      const index = Number(event.key) - 1;
      if (index >= 0 && index < config.skipReasons.length) { skip(config.skipReasons[index].value); event.preventDefault(); }
      return;
    }
    if (keysOpen) return;
    if (busy) { event.preventDefault(); return; }  // the answer on its way stays the one on screen
    if (/^[1-5]$/.test(event.key)) { choose(Number(event.key) - 1); event.preventDefault(); }
    else if (event.key === "ArrowLeft") { choose(selected === null ? 1 : selected - 1); event.preventDefault(); }
    else if (event.key === "ArrowRight") { choose(selected === null ? 3 : selected + 1); event.preventDefault(); }
    else if (event.key === "Enter") { submit(); event.preventDefault(); }
    else if (event.key === "x" || event.key === "X") { openSkip(); event.preventDefault(); }
    else if (event.key === "?") { $("keys").hidden = false; event.preventDefault(); }
  });
  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", openSkip);
  $("help-toggle").addEventListener("click", () => { $("keys").hidden = false; });

  buildLevels();
  start();
})();
