// The comparison page: two photos side by side, five levels, everything by keyboard.
// It talks to the rater API only (through core/taskkit.js), so the page and scripts follow the same rules.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("compare-config").textContent);
  const $ = (id) => document.getElementById(id);
  const app = $("app");
  const left = $("left");
  const right = $("right");
  const levelsBox = $("levels");
  const task = TaskKit.page({
    show,
    photos: (pair) => [pair.left.url, pair.right.url],
    invalid: (data) => { if (data.level) task.showError(String(data.level)); return Boolean(data.level); },
    skipReasons: config.skipReasons,
    doneTexts: {
      done: "Every pair has its answers for now. Thank you!",
      lease_limit: "You hold as many pairs as you may; finish or let them expire first.",
      closed: "This comparison task is closed to you.",
    },
  });
  const state = task.state;

  let selected = null;    // index into config.levels

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
      button.addEventListener("click", () => { if (!state.busy) choose(index); });
      levelsBox.appendChild(button);
    });
  }

  function choose(index) {
    selected = Math.max(0, Math.min(config.levels.length - 1, index));
    levelsBox.querySelectorAll(".option").forEach((button, i) => {
      button.classList.toggle("selected", i === selected);
      button.setAttribute("aria-checked", i === selected ? "true" : "false");
    });
    task.showError("");
  }

  // ---------------------------------------------------------------- pairs
  function show(pair) {
    selected = null;
    levelsBox.querySelectorAll(".option").forEach((button) => { button.classList.remove("selected"); button.setAttribute("aria-checked", "false"); });
    $("question").textContent = pair.question;
    left.src = pair.left.url;
    right.src = pair.right.url;
    app.dataset.assignment = String(pair.id);
    $("counter").textContent = state.done ? state.done + " compared" : "";
  }

  function submit() {
    if (state.busy || !state.current) return;
    if (selected === null) { task.showError("Choose an answer first: keys 1 to 5, or ← →."); return; }
    task.submit({
      level: config.levels[selected].value,
      client: {screen: `${window.screen.width}x${window.screen.height}`, viewport: `${window.innerWidth}x${window.innerHeight}`},
    });
  }

  // ---------------------------------------------------------------- keyboard
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (task.skipDialogKey(event)) return;
    if (!$("keys").hidden) { if (event.key === "Escape" || event.key === "?") { $("keys").hidden = true; event.preventDefault(); } return; }
    if (!state.current) return;
    if (state.busy) { event.preventDefault(); return; }  // the answer on its way stays the one on screen
    if (/^[1-5]$/.test(event.key)) { choose(Number(event.key) - 1); event.preventDefault(); }
    else if (event.key === "ArrowLeft") { choose(selected === null ? 1 : selected - 1); event.preventDefault(); }
    else if (event.key === "ArrowRight") { choose(selected === null ? 3 : selected + 1); event.preventDefault(); }
    else if (event.key === "Enter") { submit(); event.preventDefault(); }
    else if (event.key === "x" || event.key === "X") { task.openSkip(); event.preventDefault(); }
    else if (event.key === "?") { $("keys").hidden = false; event.preventDefault(); }
  });
  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", task.openSkip);
  $("help-toggle").addEventListener("click", () => { $("keys").hidden = false; });

  buildLevels();
  task.start();
})();
