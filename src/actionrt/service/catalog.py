"""The catalog: the service's actions and journeys, held in a `Registry` and mirrored in the store.

Each change is worked out on a copy of the registry, written in one store transaction, and only
then swapped in: a refused or failing change leaves both the registry and the store as they were.
Literal secrets in an authentication block, and in constant header and query fields named like
credentials, are sealed in the same transaction.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from actionrt.definition import Action
from actionrt.errors import ActionrtError, EditRefusedError, Problem, ValidationError
from actionrt.journeys import is_journey
from actionrt.loader import iter_definition_files, read_document
from actionrt.plugins import Plugins
from actionrt.registry import Journey, Registry
from actionrt.secrets import DEFAULT_PROVIDER, EnvironmentSecrets, refused_secrets
from actionrt.service.store import Store, Transaction
from actionrt.service.vault import (
    PARAMETER_LISTS,
    ConsoleSecrets,
    ConsoleSecretsPlugin,
    Vault,
    console_ids,
    foreign_references,
    new_secret_id,
    seal_authentication,
    seal_parameters,
)

log = logging.getLogger("actionrt.service")

SOURCE = "<api>"
EXAMPLES_LOADED = "examples_loaded"


class NotFoundError(ActionrtError, LookupError):
    """No action or journey by that name."""


class NameTakenError(ValidationError):
    """A create, rename or duplicate to a name another action has (answered 409)."""

    def __init__(self, name: str) -> None:
        super().__init__([Problem("", "name", f"an action named {name!r} already exists")])


class Catalog:
    """Actions and journeys by name, with the registry's rules, backed by the store."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        *,
        allow_private_network: bool = False,
        extra_plugins: tuple[object, ...] = (),
        entry_points: bool | None = None,
        env_secrets: Iterable[str] | None = None,
    ) -> None:
        self.store = store
        self.vault = vault
        self.secrets = ConsoleSecrets(self.read_secret)
        self.plugins = Plugins.load(
            (ConsoleSecretsPlugin(self.secrets), *extra_plugins), entry_points=entry_points
        )
        if env_secrets is not None:  # the operator's allow-list (`serve --env-secret`)
            self.plugins.secret_providers[DEFAULT_PROVIDER] = EnvironmentSecrets(env_secrets)
        self.registry = Registry(self.plugins, allow_private_network)
        self.documents: dict[str, dict[str, Any]] = {}
        self.generation = 0  # moves on every change; the call layer rebuilds its runtime on it
        self._listeners: list[Callable[[], None]] = []

    @property
    def allow_private_network(self) -> bool:
        return self.registry.allow_private_network

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    # -- loading ---------------------------------------------------------------------------------

    def load(self, examples: Path | None = None) -> list[Problem]:
        """Read the store; on first start, import `examples` first. Returns what was skipped."""
        if examples is not None and self.store.meta(EXAMPLES_LOADED) is None:
            self._import_examples(examples)
        registry = self._empty()
        skipped: list[Problem] = []
        documents = self.store.action_documents()
        for name, document in sorted(documents.items()):
            try:
                # Saved before the operator's allow-list changed? Skipped, saying why.
                self._readable(document, f"<store>/actions/{name}")
                registry.add_action(document, source=f"<store>/actions/{name}")
            except ValidationError as exc:
                skipped += exc.problems
        for jid, document in sorted(self.store.journey_documents().items()):
            try:
                registry.add_journey(document, source=f"<store>/journeys/{jid}")
            except ValidationError as exc:
                skipped += exc.problems
        for problem in skipped:
            log.warning("skipped from the store: %s", problem)
        self.registry = registry
        self.documents = {name: documents[name] for name in registry.actions}
        self._changed()
        return skipped

    def _import_examples(self, examples: Path) -> None:
        """Every valid example action and journey, sealed like anything typed in the console."""
        registry = self._empty()
        actions: list[dict[str, Any]] = []
        journeys: list[Journey] = []
        raw_journeys: list[tuple[str, Any]] = []
        with self.store.transaction() as tx:
            for path in iter_definition_files([examples]):
                try:
                    raw = read_document(path)
                    if is_journey(raw):
                        raw_journeys.append((str(path), raw))
                        continue
                    document = self._sealed(registry, raw, str(path), tx)
                    registry.add_action(document, source=str(path))
                    actions.append(document)
                except ValidationError as exc:
                    for problem in exc.problems:
                        log.warning("example skipped: %s", problem)
            for source, raw in raw_journeys:
                try:
                    journeys.append(registry.add_journey(raw, source=source))
                except ValidationError as exc:
                    for problem in exc.problems:
                        log.warning("example skipped: %s", problem)
            for document in actions:
                tx.put_action(document["name"], document)
            for journey in journeys:
                tx.put_journey(journey.id, journey.definition.model_dump(mode="json"))
            tx.set_meta(EXAMPLES_LOADED, str(examples))

    def _empty(self) -> Registry:
        return Registry(self.plugins, self.registry.allow_private_network)

    def _fork(self) -> Registry:
        """A copy of the registry that a change can work on without touching the live one."""
        current = self.registry
        return Registry(
            current.plugins,
            current.allow_private_network,
            dict(current.actions),
            {jid: Journey(j.definition, j.source) for jid, j in current.journeys.items()},
        )

    def _changed(self) -> None:
        self.generation += 1
        for listener in self._listeners:
            listener()

    # -- reading ---------------------------------------------------------------------------------

    def action(self, name: str) -> Action:
        action = self.registry.get(name)
        if action is None:
            raise NotFoundError(f"no action named {name!r}")
        return action

    def document(self, name: str) -> dict[str, Any]:
        """The action as stored: secrets appear as `{{ secrets.console:ID }}` references."""
        self.action(name)
        return copy.deepcopy(self.documents[name])

    def journey(self, journey_id: str) -> Journey:
        journey = self.registry.journeys.get(journey_id)
        if journey is None:
            raise NotFoundError(f"no journey with id {journey_id!r}")
        return journey

    def read_secret(self, secret_id: str) -> str | None:
        ciphertext = self.store.ciphertext(secret_id)
        return None if ciphertext is None else self.vault.open(ciphertext)

    # -- changes ---------------------------------------------------------------------------------

    def validate(self, raw: Any, *, replacing: str | None = None) -> Action:
        """Check an action document as create (or update of `replacing`) would, changing nothing."""
        registry = self._fork()
        document = self._checked(raw, replacing)
        if replacing is None:
            return registry.add_action(document, SOURCE)
        self.action(replacing)
        return registry.update_action(replacing, document, SOURCE)

    def create(self, raw: Any) -> Action:
        document = self._checked(raw)
        registry = self._fork()
        registry.parse(document, SOURCE)  # report every problem before anything is sealed
        self._name_free(document["name"])
        with self.store.transaction() as tx:
            sealed = self._sealed(registry, document, SOURCE, tx)
            action = registry.add_action(sealed, SOURCE)
            tx.put_action(action.name, sealed)
        self._swap(registry, {**self.documents, action.name: sealed})
        return action

    def update(self, name: str, raw: Any) -> Action:
        current = self.action(name)
        document = self._checked(raw, name)
        registry = self._fork()
        registry.parse(document, current.source)
        if document["name"] != name:
            self._name_free(document["name"])
        users = [j.id for j in registry.used_in(name)]
        with self.store.transaction() as tx:
            sealed = self._sealed(registry, document, current.source, tx, self.documents[name])
            action = registry.update_action(name, sealed, current.source)
            documents = {k: v for k, v in self.documents.items() if k != name}
            documents[action.name] = sealed
            if action.name != name:
                tx.delete_action(name)
                tx.rename_calls(name, action.name)
                for jid in users:
                    tx.put_journey(jid, registry.journeys[jid].definition.model_dump(mode="json"))
            tx.put_action(action.name, sealed)
            tx.keep_secrets(console_ids(list(documents.values())))
        self._swap(registry, documents)
        return action

    def duplicate(self, name: str, new_name: str | None = None) -> Action:
        """A copy of an action under a free name, with copies of its sealed secrets."""
        document = self.document(name)
        document["name"] = new_name if new_name is not None else self._copy_name(name)
        self._name_free(document["name"])
        registry = self._fork()
        with self.store.transaction() as tx:
            renamed: dict[str, str] = {}
            for secret_id in sorted(console_ids(document)):
                ciphertext = self.store.ciphertext(secret_id)
                assert ciphertext is not None  # the document was checked when it was stored
                renamed[secret_id] = new_secret_id()
                tx.put_secret(renamed[secret_id], ciphertext)
            copied = _rename_secrets(document, renamed)
            action = registry.add_action(copied, SOURCE)
            tx.put_action(action.name, copied)
        self._swap(registry, {**self.documents, action.name: copied})
        return action

    def delete(self, name: str) -> Action:
        self.action(name)
        registry = self._fork()
        removed = registry.remove_action(name)
        documents = {k: v for k, v in self.documents.items() if k != name}
        with self.store.transaction() as tx:
            tx.delete_action(name)
            tx.keep_secrets(console_ids(list(documents.values())))
        self._swap(registry, documents)
        return removed

    def add_journey(self, raw: Any) -> Journey:
        if not isinstance(raw, Mapping):
            raise ValidationError.single("", "", "a journey must be a JSON object")
        registry = self._fork()
        journey = registry.add_journey(raw, SOURCE)
        with self.store.transaction() as tx:
            tx.put_journey(journey.id, journey.definition.model_dump(mode="json"))
        self._swap(registry, self.documents)
        return journey

    def update_journey(self, journey_id: str, raw: Any) -> Journey:
        """Replace a journey under the registry's rules (a live one may change only its name
        and status; publishing checks its nodes against the actions)."""
        self.journey(journey_id)
        if not isinstance(raw, Mapping):
            raise ValidationError.single("", "", "a journey must be a JSON object")
        registry = self._fork()
        journey = registry.update_journey(journey_id, raw, SOURCE)
        with self.store.transaction() as tx:
            tx.put_journey(journey.id, journey.definition.model_dump(mode="json"))
        self._swap(registry, self.documents)
        return journey

    def delete_journey(self, journey_id: str) -> None:
        """Remove a journey that is not live."""
        self.journey(journey_id)
        registry = self._fork()
        registry.remove_journey(journey_id)
        with self.store.transaction() as tx:
            tx.delete_journey(journey_id)
        self._swap(registry, self.documents)

    # -- helpers ---------------------------------------------------------------------------------

    def _checked(self, raw: Any, owner: str | None = None) -> dict[str, Any]:
        """A copy of `raw`, refused when it references console secrets that are not `owner`'s
        (the action being replaced; a new action owns none yet)."""
        if not isinstance(raw, Mapping):
            raise ValidationError.single("", "", "an action must be a JSON object")
        document = copy.deepcopy(dict(raw))
        owned = console_ids(self.documents.get(owner, {})) if owner is not None else set()
        problems = foreign_references(document, owned, lambda sid: self.store.ciphertext(sid) is not None)
        if problems:
            raise ValidationError(problems)
        return document

    def _sealed(
        self,
        registry: Registry,
        raw: Any,
        source: str,
        tx: Transaction,
        stored: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The document with the literal secrets of its authentication, and of its constant
        header and query fields, sealed into the store. `stored`: the document being replaced
        (its unchanged header and query fields are kept as they are)."""
        action = registry.parse(raw, source)
        if not isinstance(raw, dict):  # parse refused anything else already
            raise ValidationError.single("", "", "an action must be a JSON object")
        self._readable(raw, source)

        def new_secret(value: str) -> str:
            secret_id = new_secret_id()
            tx.put_secret(secret_id, self.vault.seal(value))
            return secret_id

        sealed = dict(raw)
        if isinstance(raw.get("authentication"), dict):
            sealed["authentication"] = seal_authentication(raw["authentication"], action.auth, new_secret)
        endpoint = raw.get("endpoint")
        if isinstance(endpoint, dict):
            before = (stored or {}).get("endpoint")
            before = before if isinstance(before, Mapping) else {}
            sealed["endpoint"] = {
                **endpoint,
                **{
                    key: seal_parameters(endpoint[key], new_secret, before.get(key))
                    for key in PARAMETER_LISTS
                    if key in endpoint
                },
            }
        return sealed

    def _readable(self, document: Mapping[str, Any], source: str) -> None:
        """Refuse a document naming a secret a provider will never give it (an environment
        variable outside the operator's allow-list, `ACTIONRT_*`), set or not: the places a
        secret is read are its authentication and its constant header and query values."""
        blocks: list[tuple[str, Any]] = [("authentication", document.get("authentication"))]
        endpoint = document.get("endpoint")
        endpoint = endpoint if isinstance(endpoint, Mapping) else {}
        for key in PARAMETER_LISTS:
            items = endpoint.get(key)
            for index, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, Mapping) and isinstance(item.get("value"), str):
                    blocks.append((f"endpoint.{key}[{index}].value", item["value"]))
        certificate = endpoint.get("clientCertificate")
        if isinstance(certificate, Mapping):
            blocks.append(("endpoint.clientCertificate.password", certificate.get("password")))
        problems = [
            Problem(
                "" if source == SOURCE else source,
                f"{where}.{refused.path}" if refused.path else where,
                f"secret {refused.name!r} {refused.reason}",
            )
            for where, block in blocks
            for refused in refused_secrets(block, self.plugins.secret_providers)
        ]
        if problems:
            raise ValidationError(problems)

    def _name_free(self, name: str) -> None:
        if name in self.registry.actions:
            raise NameTakenError(name)

    def _copy_name(self, name: str) -> str:
        for n in range(1, 1000):
            suffix = "_copy" if n == 1 else f"_copy{n}"
            candidate = name[: 30 - len(suffix)] + suffix
            if candidate not in self.registry.actions:
                return candidate
        raise ValidationError.single("", "name", "no free name for the copy: give one")

    def _swap(self, registry: Registry, documents: dict[str, dict[str, Any]]) -> None:
        self.registry = registry
        self.documents = documents
        self._changed()


def _rename_secrets(document: Any, renamed: Mapping[str, str]) -> Any:
    if isinstance(document, str):
        for old, new in renamed.items():
            document = document.replace(old, new)
        return document
    if isinstance(document, dict):
        return {k: _rename_secrets(v, renamed) for k, v in document.items()}
    if isinstance(document, list):
        return [_rename_secrets(v, renamed) for v in document]
    return document


def refused_payload(exc: EditRefusedError) -> dict[str, Any]:
    """The 409 body of a refused edit: every field and the journeys that block it."""
    return {
        "error": str(exc),
        "action": exc.action,
        "refused": [{"field": r.field, "journeys": list(r.journeys)} for r in exc.refused],
    }
