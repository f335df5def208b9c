"""Q&A: ask, one upvote per identity, answer; ordered by votes.

Must not import any framework.
"""

import secrets

from kernel.errors import NotFound
from kernel.events import Event, to_room
from rooms import keys
from rooms.events import QUESTION_UPDATED
from rooms.model import Question
from rooms.store import RoomStore

MAX_QUESTIONS = 500
MAX_TEXT = 300
SNAPSHOT_QUESTIONS = 100


async def get(store: RoomStore, room: str, question_id: str) -> Question:
    h = await store.redis.hgetall(keys.question(room, question_id))
    if not h:
        raise NotFound("no such question")
    return Question.from_hash(h)


def _updated(room: str, question: Question) -> list[Event]:
    return [to_room(room, QUESTION_UPDATED, {"question": question.to_wire()})]


async def ask(
    store: RoomStore, room: str, text: str, author: str, author_name: str, now: float
) -> tuple[Question, list[Event]]:
    question_id = secrets.token_hex(6)
    await store.run(
        "rooms/qa_ask",
        [
            keys.questions(room),
            keys.question(room, question_id),
            keys.log(room),
            keys.log_head(room),
        ],
        [question_id, text, author, author_name, now, MAX_QUESTIONS],
    )
    question = Question(question_id, text, author, author_name, 0, False, now)
    return question, _updated(room, question)


async def upvote(
    store: RoomStore, room: str, question_id: str, identity: str, now: float
) -> tuple[Question, list[Event]]:
    await store.run(
        "rooms/qa_upvote",
        [
            keys.questions(room),
            keys.question(room, question_id),
            keys.question_voters(room, question_id),
            keys.log(room),
            keys.log_head(room),
        ],
        [question_id, identity, now],
    )
    question = await get(store, room, question_id)
    return question, _updated(room, question)


async def answer(
    store: RoomStore, room: str, question_id: str, by: str, now: float
) -> tuple[Question, list[Event]]:
    changed = await store.run(
        "rooms/qa_answer",
        [keys.question(room, question_id), keys.log(room), keys.log_head(room)],
        [question_id, by, now],
    )
    question = await get(store, room, question_id)
    return question, (_updated(room, question) if changed else [])


async def ranked(store: RoomStore, room: str, limit: int = SNAPSHOT_QUESTIONS) -> list[Question]:
    ids = await store.redis.zrevrange(keys.questions(room), 0, MAX_QUESTIONS)
    pipe = store.redis.pipeline(transaction=False)
    for question_id in ids:
        pipe.hgetall(keys.question(room, question_id))
    questions = [Question.from_hash(h) for h in await pipe.execute() if h]
    return sorted(questions, key=Question.sort_key)[:limit]
