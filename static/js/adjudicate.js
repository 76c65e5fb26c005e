// The adjudication page's keys. "Use this text" links work without this file (they reload the
// page with ?use=...); with it they fill the text box in place. Keys click or fill the same
// controls the mouse uses; single keys respect the review screen's "single-key shortcuts" setting.
(function () {
  "use strict";
  const form = document.getElementById("adjudicate-form");
  if (!form) {
    // The list of disputes: Enter opens the first one (the same link the mouse clicks).
    document.addEventListener("keydown", (event) => {
      const start = document.getElementById("start-adjudicating");
      if (start && event.key === "Enter" && event.target === document.body) start.click();
    });
    return;
  }
  const text = form.querySelector("textarea[name=text]");
  const radio = (value) => form.querySelector(`input[name=decision][value="${value}"]`);

  function singleKeysOn() {
    try { return window.localStorage.getItem("captiondesk.singleKeyShortcuts") !== "off"; } catch (e) { return true; }
  }

  function use(link) {
    const source = document.getElementById(link.dataset.textSource);
    if (!source) return;
    text.value = source.textContent.trim();
    radio("approve").checked = true;
    text.focus();
    text.setSelectionRange(text.value.length, text.value.length);
  }

  document.querySelectorAll("a.use-text").forEach((link) => {
    link.addEventListener("click", (event) => { event.preventDefault(); use(link); });
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
      return;
    }
    const target = event.target;
    if (event.key === "Escape") { target.blur && target.blur(); return; }
    if (target.matches("textarea, input[type=text], select") || event.altKey || event.ctrlKey || event.metaKey) return;
    if (!singleKeysOn()) return;
    const link = document.querySelector(`a.use-text[data-key="${event.key}"]`);
    if (link) { event.preventDefault(); use(link); return; }
    const actions = {
      a: () => { radio("approve").checked = true; },
      r: () => { radio("reject").checked = true; },
      e: () => { text.focus(); },
    };
    if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
  });
})();
