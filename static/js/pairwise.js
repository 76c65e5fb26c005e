// Blind pairwise review by keyboard: 1/2/3/4 (or a/b/t/x) press the answer buttons, p passes,
// Enter starts. Every key clicks the same button the mouse does; the page works without this.
// Single keys follow the "single-key shortcuts" setting the review screen and adjudication use
// (WCAG 2.1.4): off, only Enter answers; the checkbox here changes the same setting.
(function () {
  "use strict";
  const shownAt = performance.now();
  const aliases = { a: "1", b: "2", t: "3", x: "4" };
  const SINGLE_KEYS = "captiondesk.singleKeyShortcuts";
  let answered = false;

  function singleKeysOn() {
    try { return window.localStorage.getItem(SINGLE_KEYS) !== "off"; } catch (e) { return true; }
  }
  function setUpShortcutSetting() {
    const box = document.getElementById("single-key-shortcuts");
    if (!box) return;
    box.checked = singleKeysOn();
    box.closest(".shortcut-setting").hidden = false;
    box.addEventListener("change", () => {
      try { window.localStorage.setItem(SINGLE_KEYS, box.checked ? "on" : "off"); } catch (e) { /* private mode */ }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUpShortcutSetting);
  else setUpShortcutSetting();

  document.addEventListener("submit", (event) => {
    const spent = event.target.querySelector("input[name=time_spent_ms]");
    if (spent) spent.value = String(Math.round(performance.now() - shownAt));
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") return;
    if (event.key.length === 1 && !singleKeysOn()) return;
    const key = aliases[event.key] || event.key;
    const button = document.querySelector(`button[data-key="${CSS.escape(key)}"]`);
    if (!button || button.disabled || answered) return;
    event.preventDefault();
    answered = true; // one answer per keypress, even if the key repeats
    const form = button.form;
    if (form && form.requestSubmit) form.requestSubmit(button);
    else button.click();
    // Only now: a disabled submitter sends no name=value, and the server saw no side at all
    // ("Pick left, right, tie or both bad": every answer by key was refused).
    button.disabled = true;
  });
})();
