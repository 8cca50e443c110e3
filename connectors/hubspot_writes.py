"""HubSpot's batch deal writes (update, create, archive; 100 inputs a call) and their results.

What the API does that these rely on:
- a batch answers 200 (all written) or 207 (some refused, each error naming its inputs); the
  per-record results are read by `hubspot_wire.update_results` / `create_results`.
- one invalid input makes HubSpot refuse the whole batch with a 400, writing nothing: the batch
  is then sent again one input at a time, so each is refused only for its own fault. From
  2026-09 on, a portal admin's rules (conditional required properties, ...) refuse writes so
  too (a 400 VALIDATION_ERROR, not retried), or per input in a 207: HubSpot does not say which.
- a create's response lost to a cut connection may follow a stored batch: a repeat first looks
  the deals up by their link marker (search, whose index lags HubSpot's writes).
- the batch archive answers 204 with no body whatever the ids: unknown and archived ids are
  ignored silently, so each batch is read first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from connectors.base import NativeCreate, NativeUpdate, PushResult
from connectors.batches import chunks, not_found
from connectors.http import CallPolicy
from connectors.hubspot_company_lookup import association
from connectors.hubspot_wire import (
    Refusal,
    create_results,
    may_have_landed,
    not_live,
    refused_whole,
    update_results,
)

__all__ = ["BATCH", "DealWrites"]

BATCH = 100  # inputs of a batch read or write
Call = Callable[[str, Callable[..., Any], Any], Any]  # (operation, request, body) -> body
Batch = Callable[[str], Callable[..., Any]]  # read, update, create, archive -> its request
FindCreated = Callable[[Sequence[str]], dict[str, str]]  # link ids -> {link id: deal id}


class DealWrites:
    """The connector's deal writes: `batch` the deals' batch requests, `send` one HTTP
    exchange (no retry), `call` one through the policy, `find_created` the link lookup."""

    def __init__(
        self,
        batch: Batch,
        policy: CallPolicy,
        send: Callable[..., Any],
        call: Call,
        find_created: FindCreated,
        link_field: str | None,
    ) -> None:
        self._batch = batch
        self._policy = policy
        self._send = send
        self._call = call
        self._find_created = find_created
        self._link_field = link_field

    def update(self, updates: Sequence[NativeUpdate]) -> list[PushResult]:
        results: list[PushResult] = []
        for chunk in chunks(list(updates), BATCH):
            results += self._update_batch(chunk)
        return self._policy.redacted(results)

    def _update_batch(self, chunk: Sequence[NativeUpdate]) -> list[PushResult]:
        request = {"inputs": [{"id": u.id, "properties": _strings(u.fields)} for u in chunk]}
        body = self._batch_write(
            "update deals", partial(self._send, self._batch("update"), request), chunk
        )
        if isinstance(body, dict):
            return update_results(chunk, body)
        if len(chunk) > 1:
            # One invalid input makes HubSpot refuse the whole batch, writing nothing: sent
            # alone, each update is refused only for its own fault.
            return [result for update in chunk for result in self._update_batch([update])]
        return body

    def create(
        self, creates: Sequence[NativeCreate], companies: Mapping[str, str] | None = None
    ) -> list[PushResult]:
        """`companies`: link id -> the company a copy is created associated with."""
        results: list[PushResult] = []
        for chunk in chunks(list(creates), BATCH):
            results += self._create_batch(chunk, companies or {})
        return self._policy.redacted(results)

    def _create_batch(
        self, chunk: Sequence[NativeCreate], companies: Mapping[str, str]
    ) -> list[PushResult]:
        field = self._link_field
        inputs = []
        for create in chunk:
            properties = _strings(create.fields)
            if field:
                properties[field] = create.link_id
            item: dict[str, Any] = {"properties": properties, "objectWriteTraceId": create.link_id}
            if create.link_id in companies:
                item["associations"] = [association(companies[create.link_id])]
            inputs.append(item)
        body = self._batch_write("create deals", self._creates(inputs, field), chunk)
        if isinstance(body, dict):
            return create_results(chunk, body, field)
        if len(chunk) > 1:
            # Refused whole (an invalid input), so nothing was created: each alone, as above.
            return [r for create in chunk for r in self._create_batch([create], companies)]
        return body

    def archive(self, ids: Sequence[str]) -> list[PushResult]:
        """Archive, 100 ids a batch (`DeletesDeals` gives the result semantics).

        HubSpot's batch archive answers 204 with no body whatever the ids: unknown and
        already-archived ids are silently ignored, and a refusal is one error for the whole
        batch. So each batch is read first (batch/read of live deals): the ids it does not
        return are NOT_FOUND with HubSpot's message, and only the live ones are archived. That
        costs one read and one archive call per 100 ids; a deal someone archives between the
        two is reported as archived by us, which it is either way.
        """
        results: list[PushResult] = []
        for chunk in chunks(list(ids), BATCH):
            unique = list(dict.fromkeys(chunk))
            read = {
                "inputs": [{"id": i} for i in unique],
                "properties": ["hs_object_id"],
                "propertiesWithHistory": [],
            }
            found = self._call("find deals to delete", self._batch("read"), read)
            missing = not_live(unique, found)
            live = [i for i in unique if i not in missing]
            refused: dict[str | None, PushResult] = {}
            if live:
                archive = {"inputs": [{"id": i} for i in live]}
                body = self._batch_write(
                    "delete deals", partial(self._send, self._batch("archive"), archive), live
                )
                refused = {r.id: r for r in body} if isinstance(body, list) else {}
            results += [
                not_found(i, missing[i]) if i in missing else refused.get(i, PushResult(i, True))
                for i in chunk
            ]
        return self._policy.redacted(results)

    def _creates(self, inputs: list[dict[str, Any]], field: str | None) -> Callable[..., Any]:
        """A batch create that, when repeated, first finds what an unanswered attempt created.

        A connection cut after HubSpot stored the batch loses its response; sending it again
        would duplicate every deal. A repeat reports the inputs found by their link marker as
        created. The others are sent only if no earlier attempt can have been stored (HubSpot
        answered it with a refusal, or the connection never opened): the lookup is a search,
        and HubSpot's search index lags its writes, so a deal stored seconds ago is not found
        yet. Those are left unconfirmed, for a later lookup (the next apply's) to settle.
        """
        attempts, maybe_stored = 0, False

        def attempt() -> dict[str, Any]:
            nonlocal attempts, maybe_stored
            attempts += 1
            pending, found = inputs, dict[str, str]()
            if attempts > 1 and field:
                found = self._find_created([i["objectWriteTraceId"] for i in inputs])
                unfound = [i for i in inputs if i["objectWriteTraceId"] not in found]
                pending = [] if maybe_stored else unfound
            body: dict[str, Any] = {"status": "COMPLETE", "results": []}
            if pending:
                try:
                    body = self._send(self._batch("create"), {"inputs": pending})
                except Exception as exc:
                    maybe_stored = maybe_stored or may_have_landed(exc)
                    raise
            recovered = [{"id": i, "objectWriteTraceId": link} for link, i in found.items()]
            return {**body, "results": [*(body.get("results") or []), *recovered]}

        return attempt

    def _batch_write(
        self,
        operation: str,
        attempt: Callable[[], Any],
        chunk: Sequence[NativeUpdate | NativeCreate | str],
    ) -> dict[str, Any] | list[PushResult]:
        """The batch response, or (HubSpot refused the whole batch) one failure per record
        (`chunk` holds the writes, or the ids of an archive), whose reason reads as a 207's
        refusal of that record would."""

        def answered() -> Any:
            try:
                return attempt()
            except Exception as exc:
                # Only the batch's own 400 refuses it whole: a lookup's (the repeat of a cut
                # create searches first) raises from its own call, classified there.
                refusal = refused_whole(exc)
                if refusal is None:
                    raise
                return refusal

        answer = self._policy.call(operation, answered)
        if not isinstance(answer, Refusal):
            return answer  # the batch's body (an archive's 204 has none)
        return [
            PushResult(
                item if isinstance(item, str) else getattr(item, "id", None),
                False,
                answer.reason,
                answer.category,
                link_id=getattr(item, "link_id", None),
            )
            for item in chunk
        ]


def _strings(fields: Mapping[str, Any]) -> dict[str, str | None]:
    # HubSpot takes every property value as a string.
    return {k: None if v is None else str(v) for k, v in dict(fields).items()}
