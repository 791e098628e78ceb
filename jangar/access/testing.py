"""`StaticAccess`: a table-driven `Access` for unit tests (tokens → users, a rule for what is allowed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from jangar.access.identity import Attributes, Unauthenticated, UserInfo
from jangar.access.review import Access

__all__ = ["ADMIN", "StaticAccess"]

ADMIN = UserInfo("admin", groups=("system:masters",))


class StaticAccess(Access):
    def __init__(
        self,
        users: Mapping[str, UserInfo] | None = None,
        rule: Callable[[UserInfo, Attributes], bool] | None = None,
    ) -> None:
        self.users = dict(users if users is not None else {"admin-token": ADMIN})
        self.rule = rule or (lambda user, attrs: user == ADMIN)
        self.asked: list[tuple[UserInfo, Attributes]] = []

    async def authenticate(self, token: str | None) -> UserInfo:
        user = self.users.get(token or "")
        if user is None:
            raise Unauthenticated()
        return user

    async def allowed(self, user: UserInfo, attributes: Attributes) -> tuple[bool, str]:
        self.asked.append((user, attributes))
        return self.rule(user, attributes), ""
