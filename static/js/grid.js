// The project grid: one button ticks every image of the page for a bulk flag correction. The
// checkboxes and the form work without this file.
(function () {
  "use strict";
  const button = document.getElementById("pick-all");
  if (!button) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    const boxes = document.querySelectorAll("#image-grid input[name=images]");
    const all = Array.from(boxes).every((box) => box.checked);
    boxes.forEach((box) => { box.checked = !all; });
    button.textContent = all ? "Tick every image on this page" : "Untick every image";
  });
})();
