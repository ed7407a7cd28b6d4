// The booking form's show/hide (agent papers, courier address), the fee estimate, and the
// WeChat Pay JSAPI call. No inline script: the H5 site's CSP allows only this file.
(function () {
  function sync(form) {
    var kind = (form.querySelector('input[name=applicant_kind]:checked') || {}).value;
    var delivery = (form.querySelector('input[name=delivery]:checked') || {}).value;
    form.querySelectorAll('[data-show]').forEach(function (el) {
      var want = el.getAttribute('data-show');
      el.hidden = !(want === kind || want === delivery);
    });
    var fee = document.getElementById('bk-fee');
    if (fee) {
      var pages = 0;
      form.querySelectorAll('input[name=adm]:checked').forEach(function (c) { pages += +c.getAttribute('data-pages'); });
      var copies = +(form.querySelector('select[name=copies]') || {value: 1}).value;
      var total = +fee.getAttribute('data-base') + pages * copies * +fee.getAttribute('data-page') +
        (delivery === 'courier' ? +fee.getAttribute('data-courier') : 0);
      fee.textContent = '应付金额：' + total.toFixed(2) + ' 元';
    }
  }
  document.addEventListener('DOMContentLoaded', function () {
    var form = document.getElementById('bk-form');
    if (form) { form.addEventListener('change', function () { sync(form); }); sync(form); }
    var btn = document.getElementById('pay-wx');
    if (btn) {
      btn.addEventListener('click', function () {
        var d = btn.dataset;
        var params = {appId: d.appid, timeStamp: d.ts, nonceStr: d.nonce, package: d.package, signType: d.signtype, paySign: d.sign};
        if (!window.WeixinJSBridge) { alert('请在微信中打开本页面完成支付'); return; }
        window.WeixinJSBridge.invoke('getBrandWCPayRequest', params, function () { location.href = d.back; });
      });
    }
  });
})();
