from engine.errors import DefinitionError, Problem, StepError


def test_definition_errors_group_messages_by_path():
    error = DefinitionError([Problem("a", "x"), Problem("b", "y"), Problem("a", "z")])
    assert error.as_dict() == {"a": ["x", "z"], "b": ["y"]}
    assert "a: x" in str(error)


def test_retryability_is_data_on_the_error():
    assert StepError("timeout", "t").retryable
    assert StepError("http_5xx", "t", status_code=500).retryable
    assert StepError("http_4xx", "t", status_code=429).retryable
    assert not StepError("http_4xx", "t", status_code=404).retryable
    assert not StepError("ssrf", "t").retryable
    assert StepError("ssrf", "t", retryable=True).retryable


def test_step_errors_serialise_and_keep_details_when_extended():
    error = StepError("http_5xx", "down", status_code=502, details={"url": "u"})
    extended = error.with_details(item=2)
    assert extended.to_dict() == {
        "code": "http_5xx",
        "message": "down",
        "status_code": 502,
        "retryable": True,
        "details": {"url": "u", "item": 2},
    }
    assert extended.error_class == "5xx"
