"use strict";
// The periodic task page: under the crontab field, what the chosen schedule means in words (django-celery-beat's
// own behaviour, from a file instead of an inline script).
(function ($) {
  const readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
  const help = JSON.parse(document.getElementById("crontab-help").textContent);
  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () {
    const said = $(".field-crontab .help").empty();
    said.append(document.createTextNode(help), document.createElement("br"),
                document.createTextNode("Translation: " + (readable[$("#id_crontab").val()] || "")));
  });
})(django.jQuery);
