// The review item's keyboard flow: next / previous item, claim, release, a code by its number in the current
// domain, next / previous domain, save and next. Every key has a visible control it stands for; nothing here is
// needed to use the page.
(function () {
  "use strict";
  const form = document.getElementById("adjudicate-form");
  const domains = Array.from(document.querySelectorAll("fieldset.domain"));
  let current = 0;

  function typing(target) {
    return target.matches("textarea, select, input[type=text], input[type=search], input[type=number]");
  }

  function domainOf(element) {
    const index = domains.findIndex(function (fieldset) { return fieldset.contains(element); });
    return index >= 0 ? index : current;
  }

  function focusDomain(index) {
    if (!domains.length) return;
    current = (index + domains.length) % domains.length;
    const fieldset = domains[current];
    const target = fieldset.querySelector("input:checked") || fieldset.querySelector("input, textarea");
    if (target) target.focus();
    fieldset.scrollIntoView({block: "nearest"});
  }

  function pick(number) {
    if (!domains.length) return;
    const fieldset = domains[current];
    if (fieldset.dataset.kind === "list") return;
    const input = number === 0 ? fieldset.querySelector('input[type=radio][value=""]')
      : fieldset.querySelector('input[data-number="' + number + '"]');
    if (!input) return;
    if (input.type === "checkbox") input.checked = !input.checked;
    else input.checked = true;
    input.focus();
  }

  function go(key) {
    const link = document.querySelector('a[data-key="' + key + '"]');
    if (link) window.location.assign(link.href);
  }

  function send(key) {
    const target = document.querySelector('form[data-key="' + key + '"]');
    if (target) target.requestSubmit();
  }

  function save(buttonId) {
    const button = document.getElementById(buttonId);
    if (form && button) form.requestSubmit(button);
  }

  document.addEventListener("focusin", function (event) { current = domainOf(event.target); });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      save("save-next");
      return;
    }
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (/^[0-9]$/.test(key)) {
      event.preventDefault();
      pick(Number(key));
      return;
    }
    const actions = {
      j: function () { go("next"); }, k: function () { go("previous"); },
      c: function () { send("claim"); }, r: function () { send("release"); },
      s: function () { save("save-next"); }, m: function () { save("mark-reviewed"); },
      "]": function () { focusDomain(current + 1); }, "[": function () { focusDomain(current - 1); },
      "?": function () { const keys = document.getElementById("keys"); keys.open = !keys.open; },
    };
    if (actions[key]) {
      event.preventDefault();
      actions[key]();
    }
  });

  // A claimed item opens with the first domain ready for the number keys.
  if (form && !document.querySelector(".field.invalid")) focusDomain(0);
  else if (form) focusDomain(domains.findIndex(function (f) { return f.classList.contains("invalid"); }));
})();
