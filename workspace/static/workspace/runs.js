// The runs pages: "make current" is confirmed in a dialog first. Without JavaScript the form posts unconfirmed and
// the server answers with a confirmation page.
(function () {
  "use strict";
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog) return;
  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-confirm]");
    if (!form) return;
    const confirmed = form.querySelector('input[name="confirmed"]');
    if (confirmed.value === "yes") return;
    event.preventDefault();
    document.getElementById("confirm-text").textContent = form.dataset.confirm;
    dialog.addEventListener("close", function () {
      if (dialog.returnValue !== "confirm") return;
      confirmed.value = "yes";
      form.submit();
    }, {once: true});
    dialog.showModal();
  });
})();
