"""Socket.IO handlers of the live room: polls, Q&A, stage, chat, reactions,
room settings. Thin: validate, call one domain function, answer, emit.
"""

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from kernel import validate as v
from kernel.events import Event, to_identity
from rooms import chat, lifecycle, limits, polls, qa, stage
from rooms.events import TOKEN_UPDATED
from rooms.model import Module, Participant
from rooms.stage import StageOp
from server import tokens
from server.appkeys import DISPATCHER, EMITTER, ROOMS, SCHEDULER, SETTINGS
from server.dispatch import Ctx
from server.roles import Role
from server.rooms.connections import TALLIES, tell_stage_listeners

P = Mapping[str, Any]


async def on_poll_create(ctx: Ctx, p: P) -> dict[str, Any]:
    draft = polls.parse_draft(p)
    poll, events = await polls.create(ctx.app[ROOMS], ctx.room, draft, ctx.now)
    await ctx.emit(events)
    return {"poll": poll.to_wire(ctx.now)}


async def on_poll_vote(ctx: Ctx, p: P) -> dict[str, Any]:
    poll_id = v.ident(p, "poll_id")
    option = v.integer(p, "option", lo=0, hi=polls.MAX_OPTIONS - 1)
    await limits.check(ctx.app[ROOMS], ctx.room, "vote", ctx.identity)
    poll, changed = await polls.vote(
        ctx.app[ROOMS], ctx.room, poll_id, ctx.identity, option, ctx.now
    )
    if changed:
        ctx.app[TALLIES].touch(ctx.room, poll_id)
    return {"poll": poll.to_wire(ctx.now)}


async def on_poll_close(ctx: Ctx, p: P) -> dict[str, Any]:
    poll_id = v.ident(p, "poll_id")
    poll, events = await polls.close(ctx.app[ROOMS], ctx.room, poll_id, ctx.now, ctx.identity)
    await ctx.emit(events)
    return {"poll": poll.to_wire(ctx.now)}


async def on_qa_ask(ctx: Ctx, p: P) -> dict[str, Any]:
    text = v.text(p, "text", max_len=qa.MAX_TEXT)
    await limits.check(ctx.app[ROOMS], ctx.room, "question", ctx.identity)
    question, events = await qa.ask(
        ctx.app[ROOMS], ctx.room, text, ctx.identity, ctx.claims.name, ctx.now
    )
    await ctx.emit(events)
    return {"question": question.to_wire()}


async def on_qa_upvote(ctx: Ctx, p: P) -> dict[str, Any]:
    question_id = v.ident(p, "question_id")
    await limits.check(ctx.app[ROOMS], ctx.room, "upvote", ctx.identity)
    question, events = await qa.upvote(ctx.app[ROOMS], ctx.room, question_id, ctx.identity, ctx.now)
    await ctx.emit(events)
    return {"question": question.to_wire()}


async def on_qa_answer(ctx: Ctx, p: P) -> dict[str, Any]:
    question_id = v.ident(p, "question_id")
    question, events = await qa.answer(ctx.app[ROOMS], ctx.room, question_id, ctx.identity, ctx.now)
    await ctx.emit(events)
    return {"question": question.to_wire()}


async def _stage(ctx: Ctx, target: str, op: StageOp) -> dict[str, Any]:
    person, events = await stage.apply(
        ctx.app[ROOMS],
        ctx.room,
        target,
        op,
        actor=ctx.identity,
        actor_rank=int(ctx.claims.role),
        now=ctx.now,
    )
    await ctx.emit(events)
    if events and op not in (StageOp.RAISE, StageOp.LOWER):
        await tell_stage_listeners(ctx.app, ctx.room, person)
    if events and op is StageOp.INVITE and Role.parse(person.role) < Role.SPEAKER:
        await ctx.emit(_speaker_token(ctx, person))
    return {"participant": person.to_wire()}


# The longest a speaker token minted by an invitation lives, however long
# the invitee's own token does.
SPEAKER_TOKEN_MAX_S = 4 * 3600


def _speaker_token(ctx: Ctx, person: Participant) -> list[Event]:
    """An invited listener gets a speaker token, so WHIP lets them publish.
    It lives no longer than the invitee's own token, and removal from the
    stage revokes it (its stage generation)."""
    ttl_s = min(person.token_exp - ctx.now, SPEAKER_TOKEN_MAX_S)
    if ttl_s < 1:
        return []
    token = tokens.mint(
        ctx.app[SETTINGS].secret,
        room=ctx.room,
        identity=person.identity,
        role=Role.SPEAKER,
        name=person.name,
        ttl_s=ttl_s,
        now=ctx.now,
        stage_gen=person.stage_gen,
    )
    payload = {"token": token, "role": "speaker", "expires_at": int(ctx.now + ttl_s)}
    return [to_identity(ctx.room, person.identity, TOKEN_UPDATED, payload)]


async def on_hand_raise(ctx: Ctx, p: P) -> dict[str, Any]:
    await limits.check(ctx.app[ROOMS], ctx.room, "hand", ctx.identity)
    return await _stage(ctx, ctx.identity, StageOp.RAISE)


async def on_hand_lower(ctx: Ctx, p: P) -> dict[str, Any]:
    await limits.check(ctx.app[ROOMS], ctx.room, "hand", ctx.identity)
    return await _stage(ctx, ctx.identity, StageOp.LOWER)


async def on_stage_invite(ctx: Ctx, p: P) -> dict[str, Any]:
    return await _stage(ctx, v.ident(p, "identity"), StageOp.INVITE)


async def on_stage_remove(ctx: Ctx, p: P) -> dict[str, Any]:
    return await _stage(ctx, v.ident(p, "identity"), StageOp.REMOVE)


async def on_speaker_mute(ctx: Ctx, p: P) -> dict[str, Any]:
    target = v.ident(p, "identity")
    op = StageOp.MUTE if v.boolean(p, "muted") else StageOp.UNMUTE
    return await _stage(ctx, target, op)


async def on_reaction_send(ctx: Ctx, p: P) -> dict[str, Any]:
    event = chat.reaction(ctx.room, p.get("emoji"), ctx.identity, ctx.claims.name, ctx.now)
    await limits.check(ctx.app[ROOMS], ctx.room, "reaction", ctx.identity)
    await ctx.emit([event])
    return {}


async def on_chat_send(ctx: Ctx, p: P) -> dict[str, Any]:
    text = v.text(p, "text", max_len=chat.MAX_TEXT)
    await limits.check(ctx.app[ROOMS], ctx.room, "chat", ctx.identity)
    message, events = await chat.send(
        ctx.app[ROOMS],
        ctx.room,
        text,
        ctx.identity,
        ctx.claims.name,
        ctx.claims.role.label,
        ctx.now,
    )
    await ctx.emit(events)
    return {"message": message.to_wire()}


async def on_room_update(ctx: Ctx, p: P) -> dict[str, Any]:
    room, events = await lifecycle.update(ctx.app[ROOMS], ctx.room, p, ctx.now, ctx.identity)
    ctx.app[DISPATCHER].forget_room(ctx.room)
    await ctx.emit(events)
    return {"room": room.to_wire()}


POLL_DEADLINE_CHECK_S = 0.2


def setup(app: web.Application) -> None:
    async def close_due_polls(now: float) -> None:
        await app[EMITTER].emit(await polls.close_due(app[ROOMS], now))

    app[SCHEDULER].every(POLL_DEADLINE_CHECK_S, close_due_polls)
    d = app[DISPATCHER]
    d.add("poll:create", on_poll_create, role=Role.MODERATOR, module=Module.POLLS)
    d.add("poll:vote", on_poll_vote, module=Module.POLLS)
    d.add("poll:close", on_poll_close, role=Role.MODERATOR, module=Module.POLLS)
    d.add("qa:ask", on_qa_ask, module=Module.QA)
    d.add("qa:upvote", on_qa_upvote, module=Module.QA)
    d.add("qa:answer", on_qa_answer, role=Role.MODERATOR, module=Module.QA)
    d.add("hand:raise", on_hand_raise)
    d.add("hand:lower", on_hand_lower)
    d.add("stage:invite", on_stage_invite, role=Role.MODERATOR)
    d.add("stage:remove", on_stage_remove, role=Role.MODERATOR)
    d.add("speaker:mute", on_speaker_mute, role=Role.MODERATOR)
    d.add("reaction:send", on_reaction_send)
    d.add("chat:send", on_chat_send, module=Module.CHAT)
    d.add("room:update", on_room_update, role=Role.HOST)
