// Progressive touches only: every page works without this script.
// - live validity mark next to codice fiscale fields (R-CF, R-CF-EXISTS), asking the
//   server, which never says whose a code is;
// - "select all" checkboxes;
// - "same codice fiscale for all selected rows" copies one value into the rows.
(function () {
  'use strict';

  function debounce(fn, ms) {
    var t = null;
    return function () {
      var args = arguments;
      clearTimeout(t);
      t = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  function mark(input, ok, text) {
    var el = document.getElementById(input.getAttribute('data-cf-mark'));
    if (!el) return;
    el.textContent = text;
    el.classList.toggle('ok', ok === true);
    el.classList.toggle('ko', ok === false);
  }

  function check(input) {
    var value = input.value.trim();
    if (value === '') { mark(input, null, ''); return; }
    fetch('/api/v1/cf/' + encodeURIComponent(value), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) { mark(input, null, ''); return; }
        if (body.valid && body.registered) {
          mark(input, true, '✓ Codice fiscale valido e registrato');
        } else {
          mark(input, false, '✗ ' + (body.message || 'Codice fiscale non valido'));
        }
      })
      .catch(function () { mark(input, null, ''); });
  }

  document.querySelectorAll('input[data-cf-mark]').forEach(function (input) {
    var later = debounce(check, 300);
    input.addEventListener('input', function () { later(input); });
    if (input.value.trim() !== '') check(input);
  });

  document.querySelectorAll('input[data-select-all]').forEach(function (all) {
    var name = all.getAttribute('data-select-all');
    all.addEventListener('change', function () {
      document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
        box.checked = all.checked;
      });
    });
  });

  document.querySelectorAll('button[data-copy-cf]').forEach(function (button) {
    button.addEventListener('click', function (event) {
      var source = document.getElementById(button.getAttribute('data-copy-cf'));
      if (!source) return;
      event.preventDefault();
      document.querySelectorAll('tr[data-row]').forEach(function (row) {
        var box = row.querySelector('input[type=checkbox][name=sel]');
        var cf = row.querySelector('input[data-row-cf]');
        if (box && cf && box.checked) {
          cf.value = source.value;
          cf.dispatchEvent(new Event('input'));
        }
      });
    });
  });
})();
