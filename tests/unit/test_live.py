"""tests/helpers/live.py: what the verifiers and drills share."""

import urllib.error

import live
import pytest


def answers(code):
    def request(url, **kwargs):
        if code != 200:
            raise urllib.error.HTTPError(url, code, "refused", {}, None)
        return "ok"
    return request


@pytest.mark.parametrize("code", [200, 401, 403, 429])
def test_status_is_the_code_a_call_answers_with(code):
    assert live.status(answers(code), "https://10.0.0.1:9090/-/ready", auth=("promha", "x")) == code


def test_status_lets_other_failures_through():
    def unreachable(url):
        raise urllib.error.URLError("connection refused")

    with pytest.raises(urllib.error.URLError):
        live.status(unreachable, "https://10.0.0.1:9090/")


def test_wait_for_returns_the_first_answer_and_times_out_naming_what_it_waited_for():
    assert live.wait_for(lambda: "ready", 1, "anything") == "ready"
    with pytest.raises(AssertionError, match="timed out after 0.2s waiting for the peer"):
        live.wait_for(lambda: None, 0.2, "the peer")
