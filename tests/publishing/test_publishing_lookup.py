"""XAccess.find_published_post over the sandbox: how a post whose outcome is unknown is
recognised in the account's timeline (text, time, reply target, quote), never taking a
post already accounted for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from psycopg.rows import dict_row
from publishing_helpers import connect_account


async def test_find_published_post_matches_text_time_reply_and_quote(api, merchant, sandbox, db):
    acct, owner = await connect_account(api, merchant, sandbox)
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM accounts WHERE id = %s", (acct.id,))
        account = await cur.fetchone()
    xa = api.app.deps.xaccess
    since = datetime.now(UTC) - timedelta(seconds=30)
    first = await xa.call(account, lambda u: u.create_post("Tom & Jerry"))
    reply = await xa.call(account, lambda u: u.create_post("and then", reply_to=first.id))
    quote = await xa.call(account, lambda u: u.create_post("look", quote_tweet_id=first.id))

    found = await xa.find_published_post(account, "Tom & Jerry", since)
    assert found is not None and found.id == first.id
    # Already accounted for: not taken again.
    assert await xa.find_published_post(account, "Tom & Jerry", since, {first.id}) is None
    # A reply only matches as a reply to the same post, a quote as a quote of it.
    assert await xa.find_published_post(account, "and then", since) is None
    found = await xa.find_published_post(account, "and then", since, reply_to=first.id)
    assert found is not None and found.id == reply.id
    assert await xa.find_published_post(account, "and then", since, reply_to="1") is None
    assert await xa.find_published_post(account, "look", since) is None
    found = await xa.find_published_post(account, "look", since, quote_of=first.id)
    assert found is not None and found.id == quote.id
    # Nothing from before the time asked about, nor other texts.
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await xa.find_published_post(account, "Tom & Jerry", later) is None
    assert await xa.find_published_post(account, "Tom and Jerry", since) is None
    assert [p.id for p in sandbox.state.iter_posts(owner.id)] == [first.id, reply.id, quote.id]
