from datetime import UTC, datetime, timedelta

import pytest

from engine.context import approval_context, build_context, deep_merge, error_context, merge_event
from engine.errors import EngineError, StepError
from engine.machine import (
    AwaitApproval,
    Continue,
    Finish,
    RetryAt,
    Wait,
    cancel,
    decide_after_approval,
    decide_after_failure,
    decide_after_join,
    decide_after_success,
    decide_after_wait,
    final_result,
    idempotency_key,
    time_out,
)
from engine.outcome import ApprovalRequest, JoinDecision, StepOutcome, WaitRequest
from engine.state import ApprovalStatus, ErrorType, ExecutionResult, ExecutionStatus
from tests.unit.engine.fakes import NOW, definition_of

R = ExecutionResult


def always(value):
    return lambda: value


DEFINITION = definition_of(
    {
        "id": "fetch",
        "type": "execute",
        "next": "check",
        "execute": [{"type": "http_request", "url": "https://x.example.com"}],
        "retry": {
            "max_attempts": 3,
            "backoff": "exponential",
            "initial_interval": "1s",
            "retry_on": ["*"],
        },
    },
    {
        "id": "check",
        "type": "condition",
        "on_true": "approve",
        "on_false": "guarded",
        "condition": {"field": "x", "operator": "exists"},
    },
    {
        "id": "approve",
        "type": "action",
        "action": {"type": "block"},
        "next": "wait",
        "execute": [{"type": "create_approval_request", "entity": "x", "data": {}}],
    },
    {"id": "wait", "type": "wait", "wait": {"event": "x.done", "timeout": "1h"}, "next": "done"},
    {"id": "done", "type": "action", "action": {"type": "allow"}},
    {"id": "rescue", "type": "action", "action": {"type": "block"}, "on_error": "done"},
    {
        "id": "guarded",
        "type": "execute",
        "on_error": "rescue",
        "on_timeout": "done",
        "execute": [{"type": "log", "message": "x"}],
    },
)
STEP = DEFINITION.step


def test_success_continues_to_the_chosen_step_with_the_steps_updates():
    outcome = StepOutcome(
        output={"r": 1},
        next_step_id="check",
        result=R.EXECUTED,
        context_updates={"steps": {"fetch": {"output": {"r": 1}}}},
    )
    decision = decide_after_success(DEFINITION, STEP("fetch"), outcome, None)
    assert decision == Continue("check", R.EXECUTED, {"steps": {"fetch": {"output": {"r": 1}}}})


def test_a_step_without_a_result_keeps_the_current_one():
    outcome = StepOutcome(next_step_id="approve", condition_result=True)
    assert decide_after_success(DEFINITION, STEP("check"), outcome, R.EXECUTED).result is R.EXECUTED


def test_no_next_step_completes_with_the_last_result_set():
    outcome = StepOutcome(result=R.BLOCKED, reason="Invalid order total")
    decision = decide_after_success(DEFINITION, STEP("rescue"), outcome, R.ALLOWED)
    assert decision == Finish(ExecutionStatus.COMPLETED, R.BLOCKED, message="Invalid order total")


def test_an_execution_that_never_set_a_result_completes_allowed():
    assert final_result(None) is R.ALLOWED
    assert final_result(R.EXECUTED) is R.EXECUTED
    decision = decide_after_success(DEFINITION, STEP("check"), StepOutcome(), None)
    assert isinstance(decision, Finish)
    assert decision.result is R.ALLOWED


def test_an_approval_request_parks_the_execution_with_a_provisional_result():
    request = ApprovalRequest("x", None, "ops")
    outcome = StepOutcome(result=R.BLOCKED, approval=request, next_step_id="wait")
    decision = decide_after_success(DEFINITION, STEP("approve"), outcome, None)
    assert decision == AwaitApproval("approve", request, R.BLOCKED)


def test_a_wait_request_parks_the_execution():
    request = WaitRequest(event="x.done", timeout=timedelta(hours=1))
    decision = decide_after_success(DEFINITION, STEP("wait"), StepOutcome(wait=request), R.ALLOWED)
    assert decision == Wait("wait", request, R.ALLOWED)


def test_continuing_to_an_unknown_step_is_an_engine_error():
    with pytest.raises(EngineError):
        decide_after_success(DEFINITION, STEP("check"), StepOutcome(next_step_id="ghost"), None)


def test_a_retryable_failure_is_retried_with_backoff_while_attempts_remain():
    error = StepError("http_5xx", "down", status_code=503)
    first = decide_after_failure(DEFINITION, STEP("fetch"), error, 1, NOW, always(0.0))
    second = decide_after_failure(DEFINITION, STEP("fetch"), error, 2, NOW, always(0.0))
    assert first == RetryAt(NOW + timedelta(seconds=1), 2, "fetch")
    assert second == RetryAt(NOW + timedelta(seconds=2), 3, "fetch")


def test_the_last_attempt_fails_the_execution_with_step_error():
    error = StepError("http_5xx", "down", status_code=503)
    decision = decide_after_failure(DEFINITION, STEP("fetch"), error, 3, NOW, always(0.0))
    assert isinstance(decision, Finish)
    assert (decision.status, decision.result, decision.error_type) == (
        ExecutionStatus.FAILED,
        R.FAILED,
        ErrorType.STEP_ERROR,
    )
    assert "after 3 attempt(s)" in decision.message


def test_a_final_timeout_fails_the_execution_with_error_type_timeout():
    decision = decide_after_failure(
        DEFINITION, STEP("check"), StepError("timeout", "slow"), 1, NOW, always(0.0)
    )
    assert decision.error_type is ErrorType.TIMEOUT


def test_a_non_retryable_failure_is_not_retried():
    error = StepError("template", "bad")
    decision = decide_after_failure(DEFINITION, STEP("fetch"), error, 1, NOW, always(0.0))
    assert isinstance(decision, Finish)


def test_a_failure_goes_to_on_error_with_the_error_in_the_context():
    error = StepError("validation", "no")
    decision = decide_after_failure(
        DEFINITION, STEP("guarded"), error, 1, NOW, always(0.0), current_result=R.EXECUTED
    )
    assert isinstance(decision, Continue)
    assert (decision.step_id, decision.result) == ("rescue", R.EXECUTED)
    assert decision.context_updates["error"]["code"] == "validation"
    assert decision.context_updates["steps"]["guarded"]["error"]["message"] == "no"


def test_a_passed_join_continues_and_a_failed_one_goes_to_on_error_or_fails():
    step = STEP("rescue")
    passed = JoinDecision(True, {"b": 1}, context_updates={"steps": {"rescue": {"output": 1}}})
    assert decide_after_join(DEFINITION, step, passed, None) == Finish(
        ExecutionStatus.COMPLETED, R.ALLOWED, context_updates={"steps": {"rescue": {"output": 1}}}
    )
    failed = JoinDecision(False, {}, ("b",), "b failed")
    decision = decide_after_join(DEFINITION, step, failed, None)
    assert isinstance(decision, Continue)
    assert decision.step_id == "done"
    assert decision.context_updates["error"]["failed"] == ["b"]
    no_handler = decide_after_join(DEFINITION, STEP("check"), failed, None)
    assert (no_handler.status, no_handler.message) == (ExecutionStatus.FAILED, "b failed")


def test_an_approved_approval_continues_and_settles_a_provisional_block():
    decision = decide_after_approval(
        DEFINITION, STEP("approve"), ApprovalStatus.APPROVED, R.BLOCKED
    )
    assert decision == Continue("wait", R.ALLOWED)


def test_an_approval_with_no_next_step_completes_allowed():
    decision = decide_after_approval(DEFINITION, STEP("rescue"), ApprovalStatus.APPROVED, R.BLOCKED)
    assert decision == Finish(ExecutionStatus.COMPLETED, R.ALLOWED, message="approved")


def test_a_rejected_approval_blocks_the_execution():
    decision = decide_after_approval(DEFINITION, STEP("approve"), ApprovalStatus.REJECTED, None)
    assert (decision.status, decision.result, decision.error_type) == (
        ExecutionStatus.COMPLETED,
        R.BLOCKED,
        None,
    )


def test_an_expired_approval_blocks_with_a_timeout():
    decision = decide_after_approval(DEFINITION, STEP("approve"), ApprovalStatus.EXPIRED, None)
    assert (decision.result, decision.error_type) == (R.BLOCKED, ErrorType.TIMEOUT)


def test_approval_branches_are_followed_when_named():
    step = definition_of(
        {
            "id": "ask",
            "type": "action",
            "action": {"type": "require_approval"},
            "on_approve": "yes",
            "on_reject": "no",
            "on_timeout": "late",
        },
        {"id": "yes", "type": "action", "action": "allow"},
        {"id": "no", "type": "action", "action": "block"},
        {"id": "late", "type": "action", "action": "block"},
    )
    ask = step.step("ask")
    assert decide_after_approval(step, ask, ApprovalStatus.APPROVED, None).step_id == "yes"
    assert decide_after_approval(step, ask, ApprovalStatus.REJECTED, None).step_id == "no"
    assert decide_after_approval(step, ask, ApprovalStatus.EXPIRED, None).step_id == "late"
    with pytest.raises(EngineError):
        decide_after_approval(step, ask, ApprovalStatus.PENDING, None)


def test_an_event_continues_a_wait_and_a_timeout_fails_it_without_on_timeout():
    assert decide_after_wait(DEFINITION, STEP("wait"), False, R.BLOCKED) == Continue(
        "done", R.BLOCKED
    )
    timed_out = decide_after_wait(DEFINITION, STEP("wait"), True)
    assert (timed_out.status, timed_out.result, timed_out.error_type) == (
        ExecutionStatus.FAILED,
        R.FAILED,
        ErrorType.TIMEOUT,
    )
    assert decide_after_wait(DEFINITION, STEP("guarded"), True) == Continue("done")


def test_workflow_timeout_and_cancel_decisions():
    assert time_out(DEFINITION).error_type is ErrorType.TIMEOUT
    assert cancel().status is ExecutionStatus.CANCELLED


def test_idempotency_keys_are_stable_per_attempt_group():
    assert idempotency_key("ex-1", "pay", 1) == "ex-1:pay:1"


def test_decisions_serialise():
    assert RetryAt(NOW, 2, "s").to_dict() == {
        "decision": "retry",
        "step_id": "s",
        "due": NOW.isoformat(),
        "attempt": 2,
    }
    assert (
        Finish(ExecutionStatus.FAILED, R.FAILED, ErrorType.TIMEOUT, "m").to_dict()["error_type"]
        == "timeout"
    )


def test_deep_merge_merges_objects_and_replaces_everything_else():
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [2], "e": 3}, "d": {"x": 1}}) == {
        "a": {"b": 1, "c": [2], "e": 3},
        "d": {"x": 1},
    }
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}


def test_an_event_is_merged_into_the_context_and_kept_by_type():
    context = {"quote": {"id": "q", "total": 5}}
    merged = merge_event(
        context, "quote.rep_reviewed", {"quote": {"rep_decision": "approved"}}, step_id="w"
    )
    assert merged["quote"] == {"id": "q", "total": 5, "rep_decision": "approved"}
    assert merged["events"]["quote.rep_reviewed"] == {"quote": {"rep_decision": "approved"}}
    assert merged["steps"]["w"]["output"]["event_type"] == "quote.rep_reviewed"


def test_the_initial_context_holds_the_payload_and_execution_facts():
    started = datetime(2024, 1, 1, tzinfo=UTC)
    context = build_context(
        {"batch_id": 7},
        execution_id="ex",
        started_at=started,
        workflow_id="wf",
        workflow_version="1",
        event_type="data.batch.ready",
    )
    assert context["batch_id"] == 7
    assert context["event"] == {"type": "data.batch.ready", "id": None, "batch_id": 7}
    assert context["execution"] == {"id": "ex", "started_at": "2024-01-01T00:00:00+00:00"}
    assert context["workflow"] == {"id": "wf", "version": "1"}
    assert context["now"] == "2024-01-01T00:00:00+00:00"


def test_approval_and_error_context_updates():
    update = approval_context("s", status="approved", approver="u1", reason="ok", decided_at=NOW)
    assert update["approvals"]["s"] == {
        "status": "approved",
        "approver": "u1",
        "reason": "ok",
        "decided_at": NOW.isoformat(),
    }
    assert error_context("s", {"code": "x"}) == {
        "error": {"step_id": "s", "code": "x"},
        "steps": {"s": {"error": {"code": "x"}}},
    }
