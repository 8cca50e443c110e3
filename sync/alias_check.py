"""`crmsync check`'s findings on `owners.aliases` against the users the CRMs list.

An alias no CRM has a user for can never match anything (a typo passes the config's own
checks: it is an email); an email it stands for that no CRM has a user for is given to
nobody where a deal read through the alias is copied or its owner written. Warnings, not
problems: the config works, and a CRM may get that user tomorrow.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from config import Config

__all__ = ["alias_summary", "alias_warnings"]


def alias_summary(config: Config) -> list[str]:
    """The summary's line on aliases, where the config sets some."""
    count = len(config.document.owners.aliases)
    if not count:
        return []
    return [f"owners: {count} alias(es) (owners.aliases): emails read as the ones they stand for"]


def alias_warnings(config: Config, users: Mapping[str, Collection[str]]) -> list[str]:
    """A warning per alias no instance has a user for, and per email it stands for that none
    has; `users`: every instance -> its users' emails, lower-cased (`sync.connect.owner_emails`)."""
    known = {email.strip() for emails in users.values() for email in emails}
    listed = ", ".join(users)
    lines = []
    for alias, target in config.document.owners.aliases.items():
        path = ("owners", "aliases", alias)
        if alias.lower() not in known:
            lines.append(
                config.located(
                    path,
                    f"no instance ({listed}) has a user with this email: the alias can never "
                    "match anything; correct it to the email a CRM knows the person by, or "
                    "leave it out",
                )
            )
        if target.lower() not in known:
            lines.append(
                config.located(
                    path,
                    f"no instance ({listed}) has a user with {target.lower()}, the email it "
                    "stands for: copies and owner changes giving a deal to it fail in each CRM "
                    "without a user of the alias; correct it, or add a user with that email",
                )
            )
    return [f"warning: {line}" for line in lines]
