"""GetImage, ListImages and the server's channel list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from sqlalchemy import Connection

from catalog_service.adapters.db.listing import ListQuery, State
from catalog_service.adapters.db.rows import db_text, load_record, published_sort_key
from catalog_service.adapters.list_cache import Listing, listing
from catalog_service.domain.calls import Caller, Rendered, View
from catalog_service.domain.preconditions import Conditions, evaluate
from catalog_service.handlers import list_filters
from catalog_service.handlers.core import NO_CONDITIONS, CatalogCore
from imgapi_common.errors import not_found


class ReadHandlers(CatalogCore):
    """GetImage, ListImages, ListChannels."""

    def get_image(
        self,
        uuid: str,
        caller: Caller,
        view: View,
        incl_admin_fields: bool = False,
        cond: Conditions = NO_CONDITIONS,
        subject: Literal["image", "file", "icon"] = "image",
    ) -> Rendered:
        channel = self.resolve_channel(caller.channel, write=False)
        with self.uow.read() as conn:
            row = self._load(conn, uuid, caller, channel)
        admin = incl_admin_fields or view.include_admin_fields
        view = View(view.include_channels, admin)
        if admin:
            rendered = self.render(row.record, view, row.revision)
        else:
            v1, e1, v2, e2 = row.views
            text, etag = (v2, e2) if view.include_channels else (v1, e1)
            rendered = Rendered(row.record, text, etag, row.revision)
        last_modified = None
        if subject == "file":
            files = row.record.get("files") or []
            last_modified = files[0].get("mtime") if files and isinstance(files[0], dict) else None
        elif subject == "icon":
            icon = row.record.get("icon")
            last_modified = icon.get("mtime") if isinstance(icon, dict) else None
        if evaluate(cond, rendered.etag, is_get=True, last_modified=last_modified):
            return Rendered(rendered.record, rendered.view_json, rendered.etag, rendered.revision, True)
        return rendered

    def list_images(self, caller: Caller, view: View, **filters: Any) -> list[Rendered]:
        """One page of images (:meth:`_page`), from the listing cache when it is current."""
        images = listing(self, ReadHandlers._page, (caller, view), filters).answer
        assert images is not None
        return images

    def list_images_since(
        self, if_version: str, caller: Caller, view: View, **filters: Any
    ) -> Listing[list[Rendered]]:
        """:meth:`list_images` with the version of the data it was read at; no images when the
        data is still at ``if_version``."""
        return listing(self, ReadHandlers._page, (caller, view), filters, if_version)

    def list_page_since(self, if_version: str, caller: Caller, view: View, **filters: Any) -> Listing[str]:
        """:meth:`list_images_since` answering the page as one JSON array text of the views."""
        return listing(self, ReadHandlers._page_json, (caller, view), filters, if_version)

    def _page(
        self, caller: Caller, view: View, *, full_records: bool = True, **filters: Any
    ) -> list[Rendered]:
        """One page of images (filters: see :meth:`_query`)."""
        with self.uow.read() as conn:
            found = self._query(conn, caller, view, **filters)
            if found is None:
                return []
            q, shown = found
            full = full_records or shown.include_admin_fields
            rows = self.repo.list_rows(
                conn, q, self._dialect, include_channels=shown.include_channels, full=full
            )
        return self._rendered(rows, shown, full)

    def _page_json(self, caller: Caller, view: View, **filters: Any) -> str:
        """The views of one page as one JSON array text. Without admin fields (which are rendered
        per image), the stored views are read and joined as they are: no per-image object."""
        with self.uow.read() as conn:
            found = self._query(conn, caller, view, **filters)
            if found is None:
                return "[]"
            q, shown = found
            if not shown.include_admin_fields:
                views = self.repo.list_views(conn, q, self._dialect, include_channels=shown.include_channels)
                return "[" + ",".join(views) + "]"
            rows = self.repo.list_rows(
                conn, q, self._dialect, include_channels=shown.include_channels, full=True
            )
        return "[" + ",".join(r.view_json for r in self._rendered(rows, shown, full=True)) + "]"

    def _rendered(self, rows: Sequence[Any], shown: View, full: bool) -> list[Rendered]:
        """Listing rows as images in ``shown``: the stored views, or rendered with admin fields."""
        if shown.include_admin_fields:
            return [self.render(load_record(r.record), shown, int(r.revision)) for r in rows]
        return [
            Rendered(load_record(r.record) if full else {"uuid": r.uuid}, r.view, r.etag, int(r.revision))
            for r in rows
        ]

    def _query(
        self,
        conn: Connection,
        caller: Caller,
        view: View,
        *,
        owner: str = "",
        name: str = "",
        version: str = "",
        state: State = "active",
        public: bool | None = None,
        os: str = "",
        type: str = "",
        tags: Mapping[str, str] | None = None,
        billing_tags: Sequence[str] = (),
        limit: int = 0,
        marker_uuid: str = "",
        marker_published_at: str = "",
        descending: bool = False,
        incl_admin_fields: bool = False,
    ) -> tuple[ListQuery, View] | None:
        """The query of one page, and the view it is shown in; None when nothing can match.
        ``limit`` 0 or above the maximum is the maximum page; ``marker_published_at`` is a
        timestamp text (``YYYY-MM-DDTHH:MM:SS.mmmZ``)."""
        channel = self.resolve_channel(caller.channel, write=False)
        view = View(view.include_channels, incl_admin_fields or view.include_admin_fields)
        n = list_filters.MAX_LIMIT if limit <= 0 else min(limit, list_filters.MAX_LIMIT)
        st = state
        if self.cfg.mode != "dc" and not caller.authenticated:
            if st in ("disabled", "unactivated", "creating", "failed"):
                return None
            if st == "all":
                st = "active"
        mk: tuple[str, str | None] | None = None
        if marker_uuid:
            sort_key = self.repo.published_sort_of(conn, marker_uuid)
            if sort_key is None:
                raise not_found(f"image {marker_uuid} not found")
            mk = (sort_key, marker_uuid)
        elif marker_published_at:
            mk = (published_sort_key(marker_published_at), None)
        q = ListQuery(
            state=st,
            account=None if caller.user_account is None else db_text(caller.user_account),
            owner=db_text(owner) or None,
            name=list_filters.text_match(name, allow_substring=True),
            version=list_filters.text_match(version, allow_substring=True),
            os=db_text(os) or None,
            type=list_filters.text_match(type, allow_negate=True),
            public=public,
            tags=list_filters.tag_filters(tags or {}),
            billing_tags=list_filters.billing_filters(billing_tags),
            channel=channel,
            limit=n,
            descending=descending,
            marker=mk,
        )
        return q, view

    def server_channels(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for c in self.settings.channels:
            d: dict[str, Any] = {"name": c.name, "description": c.description}
            if c.default:
                d["default"] = True
            out.append(d)
        return out
