// What the region and description pages share on top of core/taskkit.js: the photo, the dialogs and the
// keys every page has. Each page passes its own form through `hooks`.
"use strict";

window.GroundingTask = function (hooks) {
  const config = JSON.parse(document.getElementById("task-config").textContent);
  const $ = (id) => document.getElementById(id);
  const photo = $("photo");
  const task = TaskKit.page({
    show,
    photos: (lease) => [lease.image.url],
    invalid: (data) => {
      if (!data.errors) return false;
      const rest = hooks.showErrors(data.errors);
      if (rest.length) task.showError(rest.join(" · "));
      return true;
    },
    skipReasons: config.skipReasons,
    doneTexts: {
      done: "Every photo has all the answers it needs. Thank you!",
      lease_limit: "Finish the photo you have open first.",
      closed: "This task is closed to you now.",
    },
  });
  const state = task.state;

  function show(lease) {
    photo.onload = () => { state.shownAt = performance.now(); hooks.onPhotoLoaded && hooks.onPhotoLoaded(); };
    photo.src = lease.image.url;
    $("counter").textContent = state.done ? `${state.done} done this session` : "";
    hooks.reset(lease);
  }

  function submit() {
    if (!state.current || state.busy) return;
    const body = hooks.payload();
    if (body) task.submit(body);  // else the page showed what is missing
  }

  // Dialog keys come first; the page gets every other key while a photo is on screen.
  document.addEventListener("keydown", (event) => {
    if (!$("keys").hidden) { if (event.key === "Escape" || event.key === "?") { $("keys").hidden = true; event.preventDefault(); } return; }
    if (task.skipDialogKey(event)) return;
    if (!state.current) return;
    if (state.busy) { event.preventDefault(); return; }  // keys typed during a submit would land on the old photo
    const typing = event.target && (event.target.tagName === "TEXTAREA" || event.target.tagName === "INPUT" || event.target.tagName === "SELECT");
    if (!typing && event.key === "?") { $("keys").hidden = false; event.preventDefault(); return; }
    if (!typing && (event.key === "x" || event.key === "X") && !event.ctrlKey && !event.metaKey) { task.openSkip(); event.preventDefault(); return; }
    hooks.onKey(event, typing);
  });
  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", task.openSkip);
  $("help-toggle").addEventListener("click", () => { $("keys").hidden = false; });

  return {config, state, submit, start: task.start, showError: task.showError};
};
