// Route form: show only the price fields the chosen provider's cost uses. Without JavaScript
// every price field shows, each saying what it is for.
(function () {
  "use strict";
  var form = document.getElementById("route-form");
  if (!form) return;
  var provider = form.querySelector("[name=provider]");
  function update() {
    form.querySelectorAll(".price[data-providers]").forEach(function (row) {
      var used = row.getAttribute("data-providers").split(" ");
      var input = row.querySelector("input");
      var keep = used.indexOf(provider.value) !== -1 || (input && input.value !== "");
      row.hidden = !keep;
    });
  }
  provider.addEventListener("change", update);
  update();
})();
