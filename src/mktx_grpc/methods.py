"""The method table: per-RPC facts, keyed by full method name, in one place.

Interceptors read it to decide whether a call is public, what unit of work it gets
and which validation rule to run. The unit of work is one of:

- ``read``: one pooled connection in autocommit for the call (single statements need
  no BEGIN/COMMIT); with ``snapshot``, one REPEATABLE READ read-only transaction
  instead, which the store's independent queries can join from other connections to
  run side by side (``core.db.gather_reads``): for a report made of several queries;
- ``write``: one transaction, committed when the servicer returns, rolled back when
  it raises;
- ``own_connections``: none. The RPC's operation (``operations/``) borrows
  connections itself with ``use_connection``: it calls X between short transactions
  (so no connection is held while X answers), or it is a stream.

An RPC of ours missing from the table is treated as authenticated with no unit of
work, which is what the UNIMPLEMENTED stubs of later services need.
"""

from __future__ import annotations

from dataclasses import dataclass

from .validation import accounts as accounts_rules
from .validation import ai as ai_rules
from .validation import analytics as analytics_rules
from .validation import automation as automation_rules
from .validation import campaigns as campaigns_rules
from .validation import contacts as contacts_rules
from .validation import conversations as conversations_rules
from .validation import merchants as merchants_rules
from .validation import publishing as publishing_rules
from .validation import rules
from .validation import segments as segments_rules
from .validation import templates as templates_rules

Rule = rules.Rule


@dataclass(frozen=True)
class MethodSpec:
    #: No bearer token required (health, reflection).
    public: bool = False
    #: Runs in one transaction (commit on success, roll back on any error).
    write: bool = False
    #: Gets a pooled connection for the call (``read`` and ``write``).
    db: bool = True
    #: Validation rule for the request, or None.
    validate: Rule | None = None
    #: Destructive: a successful call writes an ``audit_log`` row (user id, request
    #: id, method, the request's ``id``) in its transaction (``write`` only; the unit
    #: of work writes it).
    audit: bool = False
    #: A point read that can be coalesced (``store/coalesce.py``): with
    #: ``MKTX_COALESCE_READS`` on, the unit of work borrows no connection for it
    #: (``core.context.DeferredConnection``); the batch it joins borrows one.
    coalesced: bool = False
    #: A read whose queries run side by side in one snapshot (``core.db.read_snapshot``,
    #: ``core.db.gather_reads``): the unit of work is a REPEATABLE READ, read-only
    #: transaction whose snapshot other pooled connections join.
    snapshot: bool = False


PUBLIC = MethodSpec(public=True, db=False)
NO_DB = MethodSpec(db=False)


def read(
    validate: Rule | None = None, *, coalesced: bool = False, snapshot: bool = False
) -> MethodSpec:
    """One autocommit connection for the call (with ``coalesced`` or ``snapshot``, see
    MethodSpec)."""
    return MethodSpec(write=False, validate=validate, coalesced=coalesced, snapshot=snapshot)


def write(validate: Rule | None = None, *, audit: bool = False) -> MethodSpec:
    """One transaction for the call; with ``audit``, an audit row in it on success."""
    return MethodSpec(write=True, validate=validate, audit=audit)


def own_connections(validate: Rule | None = None) -> MethodSpec:
    """No unit of work: the operation borrows connections itself (it calls X between
    short transactions, or streams)."""
    return MethodSpec(db=False, validate=validate)


_T = "/mktx.v1.TemplatesService/"
_A = "/mktx.v1.AccountsService/"
_CT = "/mktx.v1.ContactsService/"
_CV = "/mktx.v1.ConversationsService/"
_CP = "/mktx.v1.CampaignsService/"
_SG = "/mktx.v1.SegmentsService/"
_M = "/mktx.v1.MerchantsService/"
_PB = "/mktx.v1.PublishingService/"
_AI = "/mktx.v1.AIService/"
_AU = "/mktx.v1.AutomationService/"
_AN = "/mktx.v1.AnalyticsService/"

METHODS: dict[str, MethodSpec] = {
    # Templates
    _T + "CreateTemplate": write(templates_rules.create_template),
    _T + "GetTemplate": read(rules.require_uuid("id"), coalesced=True),
    _T + "ListTemplates": read(templates_rules.list_templates),
    _T + "UpdateTemplate": write(templates_rules.update_template),
    _T + "DeleteTemplate": write(templates_rules.delete_template, audit=True),
    _T + "PreviewTemplate": read(templates_rules.preview_template),
    # Accounts
    _A + "GetAccount": read(rules.require_uuid("id")),
    _A + "ListAccounts": read(accounts_rules.list_accounts),
    _A + "UpdateAccountSettings": write(accounts_rules.update_account_settings),
    # These call X (operations/accounts.py): no connection is held across the call.
    _A + "StartConnection": own_connections(accounts_rules.start_connection),
    _A + "CompleteConnection": own_connections(accounts_rules.complete_connection),
    _A + "RefreshAccountTokens": own_connections(rules.require_uuid("id")),
    _A + "RegisterWebhook": own_connections(accounts_rules.register_webhook),
    _A + "DisconnectAccount": own_connections(rules.require_uuid("id")),
    _A + "GetAccountStatistics": read(rules.require_uuid("id")),
    # Contacts (ImportContacts validates its stream itself; both streams are
    # operations/contacts.py)
    _CT + "CreateContact": write(contacts_rules.create_contact),
    _CT + "GetContact": read(rules.require_uuid("id")),
    _CT + "ListContacts": read(contacts_rules.list_contacts),
    _CT + "UpdateContact": write(contacts_rules.update_contact),
    _CT + "AddContactTags": write(contacts_rules.add_contact_tags),
    _CT + "RemoveContactTag": write(contacts_rules.remove_contact_tag),
    _CT + "MergeContactAttributes": write(contacts_rules.merge_contact_attributes),
    _CT + "ListContactConversations": read(contacts_rules.list_contact_conversations),
    _CT + "DeleteContact": write(contacts_rules.delete_contact, audit=True),
    _CT + "ImportContacts": own_connections(),
    _CT + "ExportContacts": own_connections(contacts_rules.export_contacts),
    # Conversations. SendMessage calls X (operations/conversations.py).
    _CV + "ListConversations": read(conversations_rules.list_conversations),
    _CV + "GetConversation": read(conversations_rules.get_conversation),
    _CV + "SendMessage": own_connections(conversations_rules.send_message),
    _CV + "CloseConversation": write(conversations_rules.close_conversation),
    _CV + "ReopenConversation": write(rules.require_uuid("id")),
    _CV + "AssignConversation": write(conversations_rules.assign_conversation),
    _CV + "UnassignConversation": write(rules.require_uuid("id")),
    _CV + "MarkConversationPending": write(rules.require_uuid("id")),
    _CV + "SnoozeConversation": write(conversations_rules.snooze_conversation),
    _CV + "MarkConversationRead": write(rules.require_uuid("id")),
    _CV + "WatchConversations": own_connections(conversations_rules.watch_conversations),
    # Merchants
    _M + "GetMerchantSettings": read(),
    _M + "UpdateMerchantSettings": write(merchants_rules.update_merchant_settings),
    # Segments
    _SG + "CreateSegment": write(segments_rules.create_segment),
    _SG + "GetSegment": read(rules.require_uuid("id")),
    _SG + "ListSegments": read(segments_rules.list_segments),
    _SG + "UpdateSegment": write(segments_rules.update_segment),
    _SG + "DeleteSegment": write(segments_rules.delete_segment, audit=True),
    _SG + "PreviewSegment": read(segments_rules.preview_segment),
    _SG + "RefreshSegmentCount": write(rules.require_uuid("id")),
    # Campaigns. SendTestMessage reads, then calls X: its autocommit connection holds
    # no transaction across the call.
    _CP + "CreateCampaign": write(campaigns_rules.create_campaign),
    _CP + "GetCampaign": read(rules.require_uuid("id")),
    _CP + "ListCampaigns": read(campaigns_rules.list_campaigns),
    _CP + "UpdateCampaign": write(campaigns_rules.update_campaign),
    _CP + "DeleteCampaign": write(rules.require_uuid("id"), audit=True),
    _CP + "StartCampaign": write(rules.require_uuid("id")),
    _CP + "PauseCampaign": write(rules.require_uuid("id")),
    _CP + "ResumeCampaign": write(rules.require_uuid("id")),
    _CP + "CancelCampaign": write(rules.require_uuid("id"), audit=True),
    _CP + "SendTestMessage": read(campaigns_rules.send_test_message),
    _CP + "GetCampaignMetrics": read(campaigns_rules.get_campaign_metrics),
    _CP + "ListCampaignRecipients": read(campaigns_rules.list_campaign_recipients),
    # Publishing. Create, Update and Validate fetch media; Create, Retry, Delete and
    # RefreshPostMetrics call X (operations/publishing.py).
    _PB + "CreatePost": own_connections(publishing_rules.create_post),
    _PB + "GetPost": read(rules.require_uuid("id")),
    _PB + "ListPosts": read(publishing_rules.list_posts),
    _PB + "UpdatePost": own_connections(publishing_rules.update_post),
    _PB + "DeletePost": own_connections(publishing_rules.id_and_etag),
    _PB + "CancelScheduledPost": write(publishing_rules.id_and_etag, audit=True),
    _PB + "RetryPost": own_connections(publishing_rules.id_and_etag),
    _PB + "ValidatePost": own_connections(publishing_rules.validate_post),
    _PB + "RefreshPostMetrics": own_connections(rules.require_uuid("id")),
    _PB + "GetPostMetrics": read(publishing_rules.get_post_metrics),
    # AI. Processing calls the model between short transactions (operations/ai.py).
    _AI + "ProcessMessage": own_connections(ai_rules.process_message),
    _AI + "StreamProcessMessage": own_connections(ai_rules.process_message),
    _AI + "GetConversationContext": read(ai_rules.get_conversation_context),
    _AI + "EscalateConversation": write(ai_rules.escalate_conversation),
    _AI + "GetAISettings": read(),
    _AI + "UpdateAISettings": write(ai_rules.update_ai_settings),
    # Automation
    _AU + "CreateFlow": write(automation_rules.create_flow),
    _AU + "GetFlow": read(rules.require_uuid("id")),
    _AU + "ListFlows": read(automation_rules.list_flows),
    _AU + "UpdateFlow": write(automation_rules.update_flow),
    _AU + "ActivateFlow": write(automation_rules.id_and_etag),
    _AU + "DeactivateFlow": write(automation_rules.id_and_etag),
    _AU + "DeleteFlow": write(automation_rules.id_and_etag, audit=True),
    _AU + "StartFlowExecution": write(automation_rules.start_flow_execution),
    _AU + "CancelFlowExecution": write(rules.require_uuid("id"), audit=True),
    _AU + "ListFlowExecutions": read(automation_rules.list_flow_executions),
    _AU + "GetFlowExecution": read(rules.require_uuid("id")),
    # Analytics: reads of the rollups (worker/rollups.py).
    # Three, six and seven queries: two connections at a time, one snapshot
    # (store.analytics).
    _AN + "GetOverview": read(analytics_rules.get_overview, snapshot=True),
    _AN + "GetContactAnalytics": read(analytics_rules.get_contact_analytics, snapshot=True),
    _AN + "GetConversationAnalytics": read(
        analytics_rules.get_conversation_analytics, snapshot=True
    ),
    _AN + "GetCampaignAnalytics": read(analytics_rules.get_campaign_analytics),
    # Three queries each, in turn, in one snapshot: the totals and series agree.
    _AN + "GetAutomationAnalytics": read(analytics_rules.get_automation_analytics, snapshot=True),
    _AN + "GetPostAnalytics": read(analytics_rules.get_post_analytics, snapshot=True),
}

_PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def spec_for(method: str) -> MethodSpec:
    spec = METHODS.get(method)
    if spec is not None:
        return spec
    if method.startswith(_PUBLIC_PREFIXES):
        return PUBLIC
    return NO_DB
