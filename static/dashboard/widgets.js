/* The widget form's live preview: the framed preview page follows the greeting and the language
   being typed (its query names them; nothing is saved until the form is). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-widget-form]");
    var frame = document.querySelector("iframe[data-widget-preview]");
    if (!form || !frame) return;
    var greeting = form.elements.greeting;
    var locale = form.elements.locale;
    var timer = null;
    function refresh() {
      var url = new URL(frame.getAttribute("src"), window.location.href);
      url.searchParams.set("greeting", greeting.value.slice(0, 500));
      url.searchParams.set("locale", locale.value);
      var next = url.pathname + url.search;
      if (next !== frame.getAttribute("src")) frame.setAttribute("src", next);
    }
    function later() { window.clearTimeout(timer); timer = window.setTimeout(refresh, 400); }
    greeting.addEventListener("input", later);
    locale.addEventListener("change", refresh);
  });
})();
