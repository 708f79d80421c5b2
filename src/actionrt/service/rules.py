"""Capping and throttling rules of the service: created in their published JSON shapes, kept in
the store, and active in the shared `Limits` only while deployed."""

from __future__ import annotations

from typing import Any, Literal

from actionrt.errors import ActionrtError, ValidationError
from actionrt.limits import CappingRule, Limits, ThrottlingRule, parse_capping_rules, parse_throttling_rules
from actionrt.service.store import RuleRow, Store

RuleKind = Literal["capping", "throttling"]


class RuleStateError(ActionrtError, RuntimeError):
    """A rule change that its state forbids (deleting a deployed rule)."""


class Rules:
    """The rules in the store, mirrored into `limits` (deployed ones apply to calls)."""

    def __init__(self, store: Store, limits: Limits) -> None:
        self.store = store
        self.limits = limits
        for row in store.rules():
            uid = self.limits.create(_parse(row.kind, row.document)[0])
            if row.deployed:
                self.limits.deploy(uid)

    def list(self, kind: RuleKind | None = None) -> list[RuleRow]:
        return [row for row in self.store.rules() if kind is None or row.kind == kind]

    def get(self, uid: str) -> RuleRow:
        row = self.store.rule(uid)
        if row is None:
            raise KeyError(uid)
        return row

    def create(self, kind: RuleKind, raw: Any) -> tuple[RuleRow, bool]:
        """Add a rule (not yet deployed); the same rule twice is the same rule. Returns the rule
        and whether it is new. Raises ValidationError naming the wrong fields."""
        rule, document = _parse(kind, raw)
        existing = self.store.rule(rule.uid)
        if existing is not None:
            return existing, False
        with self.store.transaction() as tx:
            tx.put_rule(rule.uid, kind, document)
        self.limits.create(rule)
        return self.get(rule.uid), True

    def replace(self, uid: str, raw: Any) -> RuleRow:
        """Edit an undeployed rule: its new content replaces it (and, the uid coming from the
        content, gives it a new uid). Raises RuleStateError for a deployed rule, ValidationError
        naming the wrong fields."""
        old = self.get(uid)
        if old.deployed:
            raise RuleStateError("undeploy the rule before editing it")
        rule, document = _parse(old.kind, raw)
        if rule.uid == uid:
            return old
        existed = self.store.rule(rule.uid) is not None
        with self.store.transaction() as tx:
            tx.delete_rule(uid)
            tx.put_rule(rule.uid, old.kind, document)
        self.limits.delete(uid)
        if not existed:
            self.limits.create(rule)
        return self.get(rule.uid)

    def deploy(self, uid: str) -> RuleRow:
        self.get(uid)
        with self.store.transaction() as tx:
            tx.set_deployed(uid, True)
        self.limits.deploy(uid)
        return self.get(uid)

    def undeploy(self, uid: str) -> RuleRow:
        self.get(uid)
        with self.store.transaction() as tx:
            tx.set_deployed(uid, False)
        self.limits.undeploy(uid)
        return self.get(uid)

    def delete(self, uid: str) -> None:
        if self.get(uid).deployed:
            raise RuleStateError("undeploy the rule before deleting it")
        with self.store.transaction() as tx:
            tx.delete_rule(uid)
        self.limits.delete(uid)


def _parse(kind: str, raw: Any) -> tuple[CappingRule | ThrottlingRule, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise ValidationError.single("", "", "a rule must be a JSON object")
    rule: CappingRule | ThrottlingRule
    if kind == "capping":
        rule = parse_capping_rules(raw, source="")[0]
    else:
        rule = parse_throttling_rules(raw, source="")[0]
    return rule, rule.model_dump(mode="json", by_alias=True, exclude_none=True)


def rule_payload(row: RuleRow) -> dict[str, Any]:
    return {"uid": row.uid, "kind": row.kind, "deployed": row.deployed, "rule": row.document}
