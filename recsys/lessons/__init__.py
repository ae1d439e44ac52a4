"""The course's ideas as experiments: one module per chapter, each lesson computed live.

A :class:`~recsys.lessons.base.Lesson` frames one "check your understanding" question,
computes the experiment that answers it (editable knobs, real models or a worked example),
and decides which answer is right *from the numbers it just produced*, so the feedback a
learner reads always quotes this run and never a canned sentence.
"""

from recsys.lessons.base import Context, Lesson, LessonResult, Setup, lessons

__all__ = ["Context", "Lesson", "LessonResult", "Setup", "lessons"]
