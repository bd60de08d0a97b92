"""Signed-distance shapes in micrometres: negative inside, positive outside.

A shape is drawn at any scale by turning its distance into pixel coverage, so the same
physical cell gives consistent outlines at 100X, 40X and 10X.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class Shape:
    """Base class: ``distance(x, y)`` in micrometres and a bounding box."""

    def distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def bounds(self) -> tuple[float, float, float, float]:
        raise NotImplementedError


def coverage(shape: Shape, x: np.ndarray, y: np.ndarray, px: float) -> np.ndarray:
    """Fraction of a pixel of size ``px`` (um) centred at ``x, y`` that ``shape`` covers."""
    return np.clip(0.5 - shape.distance(x, y) / px, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Circle(Shape):
    cx: float
    cy: float
    r: float

    def distance(self, x, y):
        return np.hypot(x - self.cx, y - self.cy) - self.r

    def bounds(self):
        return (self.cx - self.r, self.cy - self.r, self.cx + self.r, self.cy + self.r)


@dataclass(frozen=True)
class Ellipse(Shape):
    cx: float
    cy: float
    a: float
    b: float
    angle: float = 0.0

    def distance(self, x, y):
        c, s = np.cos(self.angle), np.sin(self.angle)
        dx, dy = x - self.cx, y - self.cy
        u, v = dx * c + dy * s, -dx * s + dy * c
        k0 = np.hypot(u / self.a, v / self.b)
        k1 = np.hypot(u / self.a ** 2, v / self.b ** 2)
        return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)

    def bounds(self):
        c, s = np.cos(self.angle), np.sin(self.angle)
        hx = np.hypot(self.a * c, self.b * s)
        hy = np.hypot(self.a * s, self.b * c)
        return (self.cx - hx, self.cy - hy, self.cx + hx, self.cy + hy)


@dataclass(frozen=True)
class Capsule(Shape):
    """A segment from (x0, y0) to (x1, y1) thickened by radius ``r``."""

    x0: float
    y0: float
    x1: float
    y1: float
    r: float

    def distance(self, x, y):
        ax, ay = x - self.x0, y - self.y0
        bx, by = self.x1 - self.x0, self.y1 - self.y0
        t = np.clip((ax * bx + ay * by) / max(bx * bx + by * by, 1e-12), 0.0, 1.0)
        return np.hypot(ax - t * bx, ay - t * by) - self.r

    def bounds(self):
        return (min(self.x0, self.x1) - self.r, min(self.y0, self.y1) - self.r,
                max(self.x0, self.x1) + self.r, max(self.y0, self.y1) + self.r)


@dataclass(frozen=True)
class Blob(Shape):
    """A star-shaped outline: radius ``r * (1 + sum a_k cos(k theta + phi_k))`` around a centre."""

    cx: float
    cy: float
    r: float
    amplitudes: tuple[float, ...] = ()
    phases: tuple[float, ...] = ()
    first_order: int = 2

    def radius(self, theta: np.ndarray) -> np.ndarray:
        return self._radius(np.cos(theta), np.sin(theta))

    def _radius(self, c1: np.ndarray, s1: np.ndarray) -> np.ndarray:
        """Radius from the direction's cosine and sine (cos k*theta by recurrence, no arctan)."""
        out = np.ones_like(c1)
        ck, sk = c1, s1
        for k in range(1, self.first_order + len(self.amplitudes)):
            if k > 1:
                ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1
            i = k - self.first_order
            if i >= 0:
                out = out + self.amplitudes[i] * (ck * np.cos(self.phases[i]) - sk * np.sin(self.phases[i]))
        return self.r * out

    def distance(self, x, y):
        dx, dy = x - self.cx, y - self.cy
        rho = np.maximum(np.hypot(dx, dy), 1e-9)
        return (rho - self._radius(dx / rho, dy / rho)) * 0.92

    def bounds(self):
        reach = self.r * (1.0 + sum(abs(a) for a in self.amplitudes))
        return (self.cx - reach, self.cy - reach, self.cx + reach, self.cy + reach)

    def polygon(self, points: int = 256) -> np.ndarray:
        """Outline vertices (points, 2) in micrometres."""
        theta = np.linspace(0.0, 2 * np.pi, points, endpoint=False)
        r = self.radius(theta)
        return np.stack([self.cx + r * np.cos(theta), self.cy + r * np.sin(theta)], axis=1)


@dataclass(frozen=True)
class Union(Shape):
    parts: tuple[Shape, ...]

    def distance(self, x, y):
        out = self.parts[0].distance(x, y)
        for part in self.parts[1:]:
            out = np.minimum(out, part.distance(x, y))
        return out

    def bounds(self):
        b = np.array([p.bounds() for p in self.parts])
        return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


@dataclass(frozen=True)
class Difference(Shape):
    """``base`` with ``cut`` taken away."""

    base: Shape
    cut: Shape

    def distance(self, x, y):
        return np.maximum(self.base.distance(x, y), -self.cut.distance(x, y))

    def bounds(self):
        return self.base.bounds()


@dataclass(frozen=True)
class Intersection(Shape):
    first: Shape
    second: Shape

    def distance(self, x, y):
        return np.maximum(self.first.distance(x, y), self.second.distance(x, y))

    def bounds(self):
        a, b = self.first.bounds(), self.second.bounds()
        return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


@dataclass(frozen=True)
class Inset(Shape):
    """``shape`` shrunk by ``margin`` micrometres all round."""

    shape: Shape
    margin: float

    def distance(self, x, y):
        return self.shape.distance(x, y) + self.margin

    def bounds(self):
        b = self.shape.bounds()
        return (b[0] + self.margin, b[1] + self.margin, b[2] - self.margin, b[3] - self.margin)
