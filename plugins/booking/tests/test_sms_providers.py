"""Aliyun and Tencent SMS through their own SDKs, against a local stand-in of each API that
records what the SDK sent (signed request, template, parameters) and answers as the provider
does, success and refusal."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from bingan_booking import sms
from bingan_booking.settings import Sms


@pytest.fixture
def provider_api():
    seen: list[dict] = []
    answer: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _do(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode() if n else ""
            seen.append({"path": self.path, "headers": dict(self.headers), "body": body,
                         "query": parse_qs(urlparse(self.path).query)})
            raw = json.dumps(answer["json"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _do

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", seen, answer
    srv.shutdown()


def test_aliyun_send_sms(provider_api):
    url, seen, answer = provider_api
    conf = Sms(provider="aliyun", access_key_id="LTAItest", access_key_secret="secret",
               endpoint=url, sign_name="示例医院")
    gw = sms.AliyunSmsGateway(conf)
    answer["json"] = {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0",
                      "RequestId": "F655A8D5"}
    res = gw.send("13800138000", "SMS_2", {"no": "YY1", "fee": "21.00"}, "text")
    assert res.ok and res.provider_ref == "900619746936498440^0"
    sent = seen[-1]
    fields = {**sent["query"], **parse_qs(sent["body"])}
    flat = {k: v[0] for k, v in fields.items()}
    assert flat["PhoneNumbers"] == "13800138000" and flat["TemplateCode"] == "SMS_2"
    assert flat["SignName"] == "示例医院"
    assert json.loads(flat["TemplateParam"]) == {"no": "YY1", "fee": "21.00"}
    assert flat.get("Action", "SendSms") == "SendSms"
    assert "authorization" in {k.lower() for k in sent["headers"]} or "Signature" in flat
    answer["json"] = {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控",
                      "RequestId": "R2"}
    res = gw.send("13800138000", "SMS_2", {}, "text")
    assert not res.ok and "BUSINESS_LIMIT_CONTROL" in res.error


def test_tencent_send_sms(provider_api):
    url, seen, answer = provider_api
    conf = Sms(provider="tencent", access_key_id="AKIDtest", access_key_secret="secret",
               sdk_app_id="1400000001", endpoint=url, sign_name="示例医院")
    gw = sms.TencentSmsGateway(conf)
    answer["json"] = {"Response": {"SendStatusSet": [{
        "SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": "+8613800138000",
        "Fee": 1, "SessionContext": "", "Code": "Ok", "Message": "send success",
        "IsoCode": "CN"}], "RequestId": "a0aabda6"}}
    res = gw.send("13800138000", "1234567", {"no": "YY1", "fee": "21.00"}, "text")
    assert res.ok and res.provider_ref.startswith("5000:")
    sent = seen[-1]
    body = json.loads(sent["body"])
    assert body["PhoneNumberSet"] == ["+8613800138000"] and body["TemplateId"] == "1234567"
    assert body["SmsSdkAppId"] == "1400000001" and body["SignName"] == "示例医院"
    assert body["TemplateParamSet"] == ["YY1", "21.00"]
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["x-tc-action"] == "SendSms"
    assert headers["authorization"].startswith("TC3-HMAC-SHA256 Credential=AKIDtest/")
    answer["json"] = {"Response": {"SendStatusSet": [{
        "SerialNo": "", "PhoneNumber": "+8613800138000", "Fee": 0, "Code":
        "LimitExceeded.PhoneNumberThirtySecondLimit", "Message": "30 秒内发送过短信"}],
        "RequestId": "b"}}
    res = gw.send("13800138000", "1234567", {}, "text")
    assert not res.ok and "PhoneNumberThirtySecondLimit" in res.error


def test_missing_credentials_say_so():
    assert "AccessKey" in sms.AliyunSmsGateway(Sms(provider="aliyun")).send(
        "13800138000", "t", {}, "x").error
    assert "SdkAppId" in sms.TencentSmsGateway(Sms(provider="tencent")).send(
        "13800138000", "t", {}, "x").error
