// Read-only secrets (API tokens, webhook signing secrets) are selected when focused, ready to
// copy. Kept out of the markup: the Content-Security-Policy allows no inline handlers.
document.addEventListener("focusin", (event) => {
  const field = event.target;
  if (field instanceof HTMLInputElement && field.hasAttribute("data-select-on-focus")) {
    field.select();
  }
});
