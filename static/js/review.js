// The review screen's keyboard and image viewer. Every key clicks, opens or focuses the same
// control the mouse uses, so the page works the same without this file (just slower).
(function () {
  "use strict";
  let shownAt = performance.now();
  const view = { s: 1, x: 0, y: 0 };
  const MIN_ZOOM = 1;
  const MAX_ZOOM = 10;

  const $ = (sel, root) => (root || document).querySelector(sel);
  const item = () => document.getElementById("review-item");
  const openPanel = () => $("details.verdict-panel[open]", item() || document);

  function submit(form) {
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit();
    else form.submit();
  }

  function closePanels() {
    document.querySelectorAll("details.verdict-panel[open]").forEach((d) => { d.open = false; });
    if (document.activeElement && document.activeElement !== document.body) {
      document.activeElement.blur();
    }
  }

  function showPanel(id, focusSelector) {
    const panel = document.getElementById(id);
    if (!panel) return;
    document.querySelectorAll("details.verdict-panel").forEach((d) => { d.open = d === panel; });
    const target = $(focusSelector, panel);
    if (target) {
      target.focus();
      if (target.tagName === "TEXTAREA") {
        target.setSelectionRange(target.value.length, target.value.length);
      }
    }
  }

  // --- time per item: the page's own clock since this item appeared ---------------------------
  document.addEventListener("submit", (event) => {
    const field = event.target.querySelector && event.target.querySelector("input[name=time_spent_ms]");
    if (field) field.value = String(Math.round(performance.now() - shownAt));
  }, true);

  // --- image zoom and pan ----------------------------------------------------------------------
  function apply() {
    const img = document.getElementById("review-image");
    const viewer = document.getElementById("viewer");
    if (!img || !viewer) return;
    img.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.s})`;
    viewer.classList.toggle("zoomed", view.s > 1);
  }

  function reset() {
    view.s = 1; view.x = 0; view.y = 0;
    apply();
  }

  function zoomAt(factor, clientX, clientY) {
    const viewer = document.getElementById("viewer");
    if (!viewer) return;
    const rect = viewer.getBoundingClientRect();
    // The point under the cursor, relative to the viewer's centre, stays where it is.
    const px = (clientX === undefined ? rect.left + rect.width / 2 : clientX) - rect.left - rect.width / 2;
    const py = (clientY === undefined ? rect.top + rect.height / 2 : clientY) - rect.top - rect.height / 2;
    const s = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, view.s * factor));
    const f = s / view.s;
    view.x = px - (px - view.x) * f;
    view.y = py - (py - view.y) * f;
    view.s = s;
    if (s === 1) { view.x = 0; view.y = 0; }
    apply();
  }

  function setUpViewer() {
    const viewer = document.getElementById("viewer");
    if (!viewer || viewer.dataset.ready) return;
    viewer.dataset.ready = "1";
    viewer.addEventListener("wheel", (event) => {
      event.preventDefault();
      zoomAt(event.deltaY < 0 ? 1.2 : 1 / 1.2, event.clientX, event.clientY);
    }, { passive: false });
    let drag = null;
    viewer.addEventListener("pointerdown", (event) => {
      if (view.s <= 1) return;
      drag = { x: event.clientX - view.x, y: event.clientY - view.y };
      viewer.setPointerCapture(event.pointerId);
      viewer.classList.add("dragging");
    });
    viewer.addEventListener("pointermove", (event) => {
      if (!drag) return;
      view.x = event.clientX - drag.x;
      view.y = event.clientY - drag.y;
      apply();
    });
    const stop = () => { drag = null; viewer.classList.remove("dragging"); };
    viewer.addEventListener("pointerup", stop);
    viewer.addEventListener("pointercancel", stop);
    viewer.addEventListener("dblclick", reset);
  }

  // The thumbnail is on screen; fetch the full-size copy and swap it in when it is ready. The
  // transform (zoom and pan) is on the element, so the swap keeps the view.
  function loadFullSize() {
    const img = document.getElementById("review-image");
    if (!img || !img.dataset.full || img.dataset.fullRequested) return;
    img.dataset.fullRequested = "1";
    const full = new Image();
    full.onload = () => {
      if (document.getElementById("review-image") !== img) return;  // the item moved on
      img.src = full.src;
      img.dataset.fullLoaded = "1";
    };
    full.src = img.dataset.full;
  }

  // --- a new item arrived (first load or htmx swap) ---------------------------------------------
  function arrived() {
    const current = item();
    if (current) current.dataset.ready = "1";
    shownAt = performance.now();
    reset();
    setUpViewer();
    loadFullSize();
    const undoBar = $(".undo-bar");
    if (undoBar) {
      const seconds = Number(undoBar.dataset.undoSeconds || "0");
      window.setTimeout(() => undoBar.remove(), seconds * 1000);
    }
  }

  document.addEventListener("htmx:load", (event) => {
    if (event.target && event.target.id === "review-item") arrived();
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", arrived);
  else arrived();

  // --- keys ------------------------------------------------------------------------------------
  function click(id) {
    const el = document.getElementById(id);
    if (el && !el.disabled) el.click();
  }

  function toggleHelp(force, id) {
    const help = document.getElementById(id || "review-help");
    if (help) help.open = force === undefined ? !help.open : force;
  }

  // After Esc closes what was open, focus goes back to where Enter does the obvious thing: the
  // start button on the start screen (it had focus before ? opened the help), else nowhere.
  function restoreFocus() {
    const start = document.getElementById("start-button");
    if (start) start.focus();
  }

  // --- single-key shortcuts can be turned off (WCAG 2.1.4); the choice lives in this browser ---
  const SINGLE_KEYS = "captiondesk.singleKeyShortcuts";
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

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target.matches && target.matches("textarea, input[type=text], input:not([type]), select");
    // Between an htmx swap and htmx wiring up the new forms a key would post the plain form.
    if (item() && !item().dataset.ready) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      const form = (target.closest && target.closest("#review-item form")) || $("form", openPanel() || undefined);
      if (form && item() && item().contains(form)) {
        event.preventDefault();
        submit(form);
      }
      return;
    }
    if (event.key === "Escape") {
      toggleHelp(false);
      toggleHelp(false, "guidelines-panel");
      closePanels();
      restoreFocus();
      return;
    }
    if (typing || event.altKey) return;
    if (event.key === "Enter" && target === document.body && document.getElementById("start-button")) {
      event.preventDefault();
      click("start-button");
      return;
    }
    if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !singleKeysOn()) return;
    if (event.ctrlKey || event.metaKey) {
      if (event.key === "z") { event.preventDefault(); click("undo-button"); }
      return;
    }
    const panel = openPanel();
    if (/^[1-9]$/.test(event.key) && panel) {
      const box = $(`input[data-index="${event.key}"]`, panel);
      if (box) {
        event.preventDefault();
        box.checked = box.type === "radio" ? true : !box.checked;
        box.focus();
      }
      return;
    }
    if (event.key === "Enter" && panel && !target.matches("button, summary, a")) {
      event.preventDefault();
      submit($("form", panel));
      return;
    }
    const actions = {
      a: () => click("accept-button"),
      e: () => showPanel("edit-panel", "textarea"),
      r: () => showPanel("reject-panel", "input[type=checkbox]"),
      s: () => showPanel("skip-panel", "input[type=radio]"),
      u: () => click("undo-button"),
      "?": () => toggleHelp(),
      g: () => toggleHelp(undefined, "guidelines-panel"),
      f: () => click("full-size"),
      "+": () => zoomAt(1.25),
      "=": () => zoomAt(1.25),
      "-": () => zoomAt(1 / 1.25),
      "0": reset,
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
})();
