"""The SOQL subset the Salesforce emulator understands, parsed and compiled to Python.

Supported: `SELECT f1, f2, Parent.f3 FROM Object [WHERE cond] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`, where cond combines `field op literal` (=, !=,
<>, <, <=, >, >=), `field [NOT] IN (literals)`, AND / OR / NOT and parentheses. Literals:
'strings' with SOQL escapes, numbers, null, true/false, dates (2024-06-30) and datetimes
(2024-06-01T00:00:00Z, +0000 or +00:00 offsets, optional fraction). As in Salesforce, field
names are case-insensitive and string comparison ignores case; ascending order puts nulls
first, descending last. A parent's field (`Account.Name`: the object its reference field
`AccountId` names) may be selected, not compared or sorted by.
Anything else raises `SoqlError` with the errorCode Salesforce would answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["Query", "SoqlError", "datetime_key", "parse_soql"]

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]

DATETIME = "datetime"
DATE = "date"
BOOLEAN = "boolean"
NUMERIC = frozenset({"double", "currency", "percent", "int"})


class SoqlError(Exception):
    """A query Salesforce refuses; `code` is its errorCode (MALFORMED_QUERY, INVALID_FIELD)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class OrderItem:
    field: str
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    sobject: str
    fields: tuple[str, ...]  # canonical spelling, in SELECT order
    where: Predicate | None
    order: tuple[OrderItem, ...]
    limit: int | None
    offset: int

    def sort_key(self, types: Mapping[str, str]) -> list[tuple[Callable[[Record], Any], bool]]:
        """(key function, descending) per ORDER BY item; apply as successive stable sorts."""
        return [
            (_order_key(item, _converter(types[item.field])), item.descending)
            for item in self.order
        ]


def _order_key(item: OrderItem, convert: Callable[[Any], Any]) -> Callable[[Record], Any]:
    # Nulls get a rank that lands them where NULLS FIRST/LAST asks after an optional reverse.
    null_rank = 0 if item.nulls_first != item.descending else 2

    def key(record: Record) -> tuple[int, Any]:
        value = record.get(item.field)
        return (null_rank, "") if value is None else (1, convert(value))

    return key


# -- literals and tokens ----------------------------------------------------------------------

_DATETIME_RE = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})"
_TOKEN_RE = re.compile(
    rf"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<datetime>{_DATETIME_RE})(?![\w:])
    | (?P<date>\d{{4}}-\d{{2}}-\d{{2}})(?![\w:T])
    | (?P<number>[+-]?\d+(?:\.\d+)?)(?![\w.])
    | (?P<op>!=|<>|<=|>=|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {
    "'": "'",
    '"': '"',
    "\\": "\\",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    "_": "\\_",
    "%": "\\%",
}
_KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "order", "by", "limit"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    value: Any = None


@dataclass(frozen=True)
class _Literal:
    kind: str  # string | number | date | datetime | boolean | null
    value: Any


def datetime_key(value: str) -> str:
    """A sortable UTC key 'YYYY-MM-DDTHH:MM:SS.mmm' for a Salesforce datetime string."""
    if len(value) == 28 and value.endswith("+0000"):  # the API's own format: the fast path
        return value[:23]
    text = value.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise SoqlError("MALFORMED_QUERY", f"invalid escape sequence: \\{nxt}")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            snippet = text[pos : pos + 20].strip()
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{snippet}'")
        kind = match.lastgroup or ""
        raw = match.group(kind)
        value: Any = raw
        if kind == "string":
            value = _unescape(raw[1:-1])
        elif kind == "number":
            value = Decimal(raw)
        tokens.append(_Token(kind, raw, value))
        pos = match.end()
    return tokens


# -- parser -----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, schemas: Mapping[str, Mapping[str, str]]):
        self.tokens = _tokenize(text)
        self.pos = 0
        self.schemas = schemas
        self.types: Mapping[str, str] = {}
        self.lower: dict[str, str] = {}

    # token helpers
    def peek(self, offset: int = 0) -> _Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def at_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() in words

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
        self.pos += 1
        return token

    def expect_word(self, word: str) -> None:
        token = self.take()
        if token.kind != "word" or token.text.lower() != word:
            raise SoqlError(
                "MALFORMED_QUERY", f"unexpected token: '{token.text}', expected {word.upper()}"
            )

    def expect_punct(self, char: str) -> None:
        token = self.take()
        if token.text != char:
            raise SoqlError(
                "MALFORMED_QUERY", f"unexpected token: '{token.text}', expected '{char}'"
            )

    # grammar
    def query(self) -> Query:
        self.expect_word("select")
        raw_fields = [self.take_name()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            raw_fields.append(self.take_name())
        self.expect_word("from")
        sobject_raw = self.take_name()
        sobject = next((s for s in self.schemas if s.lower() == sobject_raw.lower()), None)
        if sobject is None:
            raise SoqlError(
                "INVALID_TYPE",
                f"sObject type '{sobject_raw}' is not supported.",
            )
        self.types = self.schemas[sobject]
        self.lower = {name.lower(): name for name in self.types}
        fields = tuple(self.selected(name) for name in raw_fields)
        where = None
        if self.at_word("where"):
            self.take()
            where = self.disjunction()
        order: list[OrderItem] = []
        if self.at_word("order"):
            self.take()
            self.expect_word("by")
            order.append(self.order_item())
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                order.append(self.order_item())
        limit = self.count_clause("limit")
        offset = self.count_clause("offset") or 0
        if self.peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.take().text}'")
        return Query(sobject, fields, where, tuple(order), limit, offset)

    def take_name(self) -> str:
        token = self.take()
        if token.kind != "word" or token.text.lower() in _KEYWORDS:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")
        return token.text

    def selected(self, name: str) -> str:
        """A SELECT item: a field, or a parent's field (`Account.Name`) spelled canonically."""
        parent, dot, child = name.partition(".")
        if not dot:
            return self.field(name)
        reference = self.lower.get(f"{parent}id".lower())
        schema = self.schemas.get(reference[:-2]) if reference else None
        names = {n.lower(): n for n in schema or {}}
        if reference is None or child.lower() not in names:
            raise SoqlError(
                "INVALID_FIELD",
                f"Didn't understand relationship '{parent}' in field path '{name}'.",
            )
        return f"{reference[:-2]}.{names[child.lower()]}"

    def field(self, name: str) -> str:
        canonical = self.lower.get(name.lower())
        if canonical is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{self._entity()}'. If you are attempting "
                "to use a custom field, be sure to append the '__c' after the custom field name.",
            )
        return canonical

    def _entity(self) -> str:
        return next(s for s, t in self.schemas.items() if t is self.types)

    def count_clause(self, word: str) -> int | None:
        if not self.at_word(word):
            return None
        self.take()
        token = self.take()
        if (
            token.kind != "number"
            or token.value != token.value.to_integral_value()
            or token.value < 0
        ):
            raise SoqlError("MALFORMED_QUERY", f"{word.upper()} needs a non-negative integer")
        return int(token.value)

    def order_item(self) -> OrderItem:
        name = self.field(self.take_name())
        descending = False
        if self.at_word("asc", "desc"):
            descending = self.take().text.lower() == "desc"
        nulls_first = not descending
        if self.at_word("nulls"):
            self.take()
            if not self.at_word("first", "last"):
                raise SoqlError("MALFORMED_QUERY", "expected FIRST or LAST after NULLS")
            nulls_first = self.take().text.lower() == "first"
        return OrderItem(name, descending, nulls_first)

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.at_word("or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.at_word("and"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def negation(self) -> Predicate:
        if self.at_word("not"):
            self.take()
            inner = self.negation()
            return lambda r: not inner(r)
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.disjunction()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        name = self.field(self.take_name())
        kind = self.types[name]
        negate = False
        if self.at_word("not"):
            self.take()
            negate = True
            if not self.at_word("in"):
                raise SoqlError("MALFORMED_QUERY", "expected IN after NOT")
        if self.at_word("in"):
            self.take()
            values = self.literal_list(name, kind)
            return _membership(name, kind, values, negate)
        token = self.take()
        if token.kind != "op":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")
        literal = self.literal(name, kind)
        return _compare(name, kind, token.text, literal)

    def literal_list(self, name: str, kind: str) -> list[_Literal]:
        self.expect_punct("(")
        values = [self.literal(name, kind)]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            values.append(self.literal(name, kind))
        self.expect_punct(")")
        return values

    def literal(self, name: str, kind: str) -> _Literal:
        token = self.take()
        if token.kind == "word" and token.text.lower() in ("null", "true", "false"):
            word = token.text.lower()
            literal = (
                _Literal("null", None) if word == "null" else _Literal("boolean", word == "true")
            )
        elif token.kind in ("string", "number", "date", "datetime"):
            literal = _Literal(token.kind, token.value)
        else:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")
        _check_type(name, kind, literal)
        return literal


def _expected(kind: str) -> str:
    if kind == DATETIME:
        return DATETIME
    if kind == DATE:
        return DATE
    if kind == BOOLEAN:
        return BOOLEAN
    if kind in NUMERIC:
        return "number"
    return "string"


def _check_type(name: str, kind: str, literal: _Literal) -> None:
    if literal.kind == "null" or literal.kind == _expected(kind):
        return
    quoted = literal.kind == "string"
    raise SoqlError(
        "INVALID_FIELD",
        f"value of filter criterion for field '{name}' must be of type {_expected(kind)}"
        + (" and should not be enclosed in quotes" if quoted else ""),
    )


def _converter(kind: str) -> Callable[[Any], Any]:
    if kind == DATETIME:
        return lambda v: datetime_key(str(v))
    if kind in NUMERIC:
        return lambda v: v if isinstance(v, Decimal) else _decimal(v)
    if kind == BOOLEAN:
        return bool
    if kind == DATE:
        return str
    return lambda v: str(v).casefold()


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _literal_key(kind: str, literal: _Literal) -> Any:
    if literal.kind == "datetime":
        return datetime_key(str(literal.value))
    return _converter(kind)(literal.value)


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compare(name: str, kind: str, op: str, literal: _Literal) -> Predicate:
    convert = _converter(kind)
    if op in ("=", "!=", "<>"):
        equal = op == "="
        if literal.kind == "null":
            return lambda r: (r.get(name) is None) == equal
        target = _literal_key(kind, literal)

        def equality(record: Record) -> bool:
            value = record.get(name)
            return (value is not None and convert(value) == target) == equal

        return equality
    if literal.kind == "null":
        return lambda r: False
    target = _literal_key(kind, literal)
    test = _OPS[op]

    def ordered(record: Record) -> bool:
        value = record.get(name)
        return value is not None and test(convert(value), target)

    return ordered


def _membership(name: str, kind: str, values: Sequence[_Literal], negate: bool) -> Predicate:
    convert = _converter(kind)
    targets = {_literal_key(kind, v) for v in values if v.kind != "null"}
    with_null = any(v.kind == "null" for v in values)

    def member(record: Record) -> bool:
        value = record.get(name)
        found = with_null if value is None else convert(value) in targets
        return found != negate

    return member


def parse_soql(text: str, schemas: Mapping[str, Mapping[str, str]]) -> Query:
    """Parse `text` against `schemas` (sObject -> field -> type); raises SoqlError."""
    return _Parser(text, schemas).query()
