"""Validation rules for ContactsService requests (run by the validation interceptor).

ImportContacts is client streaming, so its rows are validated in the servicer, row by
row, with the same domain rules.
"""

from __future__ import annotations

from typing import Any

from mktx.v1 import contacts_pb2, conversations_pb2

from ..core.errors import FieldViolation
from ..domain import contacts as domain
from ..mapping.common import struct_to_dict
from ..mapping.contacts import EDITABLE
from . import rules


def contact_fields(c: contacts_pb2.Contact, *, prefix: str = "contact") -> list[FieldViolation]:
    """Rules for a contact given on create or import (output-only fields ignored)."""
    v = domain.validate_identity(
        x_user_id=c.x_user_id,
        username=c.username,
        display_name=c.display_name,
        profile_image_url=c.profile_image_url,
    )
    v += domain.validate_tags(c.tags)
    v += domain.validate_attributes(struct_to_dict(c.attributes))
    v += domain.validate_profile(time_zone=c.time_zone, language=c.language)
    return rules.prefixed(prefix, v)


def create_contact(req: contacts_pb2.CreateContactRequest) -> list[FieldViolation]:
    v = rules.request_id(req.request_id)
    if not req.HasField("contact"):
        return [*v, FieldViolation("contact", "is required")]
    v += rules.uuid_field(req.contact.account_id, "contact.account_id")
    v += contact_fields(req.contact)
    return v


def _filters(req: Any) -> list[FieldViolation]:
    v = rules.uuid_field(req.account_id, "account_id", required=False)
    v += rules.text_field(req.query, "query", max_len=domain.MAX_QUERY)
    if len(req.tags) > domain.MAX_TAGS_PER_REQUEST:
        v.append(FieldViolation("tags", f"at most {domain.MAX_TAGS_PER_REQUEST} tags"))
    for i, t in enumerate(req.tags):
        if not t.strip():
            v.append(FieldViolation(f"tags[{i}]", "must not be empty"))
    v += rules.enum_field(
        req.tag_match_mode, "tag_match_mode", contacts_pb2.TagMatchMode, required=False
    )
    v += rules.enum_field(req.source, "source", contacts_pb2.ContactSource, required=False)
    for key, value in struct_to_dict(req.attributes).items():
        if isinstance(value, (dict, list)) or value is None:
            v.append(FieldViolation(f"attributes.{key}", "must be a string, number or boolean"))
    return v


def list_contacts(req: contacts_pb2.ListContactsRequest) -> list[FieldViolation]:
    return rules.page(req) + _filters(req)


def export_contacts(req: contacts_pb2.ExportContactsRequest) -> list[FieldViolation]:
    return _filters(req) + rules.uuid_field(req.segment_id, "segment_id", required=False)


def update_contact(req: contacts_pb2.UpdateContactRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.contact.id, "contact.id")
    v += rules.mask_paths(req.update_mask, tuple(EDITABLE), required=True)
    paths = set(req.update_mask.paths)
    c = req.contact
    if "tags" in paths:
        v += rules.prefixed("contact", domain.validate_tags(c.tags))
    if "attributes" in paths:
        v += rules.prefixed("contact", domain.validate_attributes(struct_to_dict(c.attributes)))
    v += rules.prefixed(
        "contact",
        domain.validate_profile(
            time_zone=c.time_zone if "time_zone" in paths else "",
            language=c.language if "language" in paths else "",
        ),
    )
    return v


def add_contact_tags(req: contacts_pb2.AddContactTagsRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    if not req.tags:
        v.append(FieldViolation("tags", "at least one tag is required"))
    elif len(req.tags) > domain.MAX_TAGS_PER_REQUEST:
        v.append(FieldViolation("tags", f"at most {domain.MAX_TAGS_PER_REQUEST} tags"))
    v += [x for x in domain.validate_tags(req.tags) if x.field != "tags"]
    return v


def remove_contact_tag(req: contacts_pb2.RemoveContactTagRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    if not req.tag.strip():
        v.append(FieldViolation("tag", "is required"))
    return v


def merge_contact_attributes(
    req: contacts_pb2.MergeContactAttributesRequest,
) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    if not req.HasField("attributes") or not req.attributes.fields:
        return [*v, FieldViolation("attributes", "at least one key is required")]
    v += domain.validate_attributes(struct_to_dict(req.attributes), allow_null=True)
    return v


def list_contact_conversations(
    req: contacts_pb2.ListContactConversationsRequest,
) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    v += rules.page(req)
    v += rules.enum_field(
        req.status, "status", conversations_pb2.ConversationStatus, required=False
    )
    return v


def delete_contact(req: contacts_pb2.DeleteContactRequest) -> list[FieldViolation]:
    return rules.uuid_field(req.id, "id")
