// Run form: show the chain picker for a chain run and the route checkboxes for a comparison,
// and the image filters only when the selection uses them. Without JavaScript all show.
(function () {
  "use strict";
  var form = document.getElementById("run-form");
  if (!form) return;
  function checked(name) {
    var input = form.querySelector("input[name=" + name + "]:checked");
    return input ? input.value : "";
  }
  function update() {
    var kind = checked("kind");
    form.querySelectorAll("[data-kind]").forEach(function (el) {
      el.hidden = kind !== "" && el.getAttribute("data-kind") !== kind;
    });
    var selection = checked("selection");
    form.querySelectorAll("[data-selection]").forEach(function (el) {
      el.hidden = el.getAttribute("data-selection").split(" ").indexOf(selection) === -1;
    });
  }
  form.addEventListener("change", update);
  update();
})();
