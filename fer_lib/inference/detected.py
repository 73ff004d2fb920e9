"""What a face detector returns: a box, the detector's score and landmarks."""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[int, int, int, int]  # x, y, width, height in pixels
Point = tuple[float, float]  # x, y in pixels


@dataclass(frozen=True)
class Detection:
    """A face a detector found.

    `score` is how sure the detector is that the box holds a face, 0-1: YuNet's own score
    (whole percent) for ``yunet``, MTCNN's final-stage (O-Net) probability for ``mtcnn``,
    and for ``haar``, which has no score of its own, O-Net's probability for its box; None
    where no detector ran (a face crop classified whole, a caller's box). `landmarks` are five
    points in image pixels, both eyes first (left one in the image first), then the nose tip
    and the mouth corners; None for ``haar``.
    """

    box: Box
    score: float | None
    landmarks: tuple[Point, ...] | None = None

    @property
    def eyes(self) -> tuple[Point, Point] | None:
        """The two eye centres, the one further left in the image first; None without landmarks."""
        if not self.landmarks:
            return None
        first, second = self.landmarks[:2]
        return (first, second) if first[0] <= second[0] else (second, first)
