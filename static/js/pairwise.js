// Blind pairwise review by keyboard: 1/2/3/4 (or a/b/t/x) press the answer buttons, p passes,
// Enter starts. Every key clicks the same button the mouse does; the page works without this.
(function () {
  "use strict";
  const shownAt = performance.now();
  const aliases = { a: "1", b: "2", t: "3", x: "4" };

  document.addEventListener("submit", (event) => {
    const spent = event.target.querySelector("input[name=time_spent_ms]");
    if (spent) spent.value = String(Math.round(performance.now() - shownAt));
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") return;
    const key = aliases[event.key] || event.key;
    const button = document.querySelector(`button[data-key="${CSS.escape(key)}"]`);
    if (!button || button.disabled) return;
    event.preventDefault();
    button.disabled = true; // one answer per keypress, even if the key repeats
    const form = button.form;
    if (form && form.requestSubmit) form.requestSubmit(button);
    else button.click();
  });
})();
