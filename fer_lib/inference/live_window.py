"""A live window for annotated camera frames: OpenCV's own when it has a GUI, else Tk.

The project installs opencv-python-headless (the GUI build needs libGL and friends), so the
usual `cv2.imshow` is missing; Tk ships with most Pythons and needs only a display.
"""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

TITLE = "fer predict --webcam (q or Esc to quit)"
QUIT_KEYS = ("q", "Q", "Escape")


def display_available() -> bool:
    """Whether there is a screen to open a window on."""
    if sys.platform != "linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def opencv_has_gui() -> bool:
    """Whether this OpenCV build can open windows (opencv-python-headless cannot)."""
    gui = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                if line.strip().startswith("GUI:")), "NONE")
    return gui.upper() != "NONE"


def tk_available() -> bool:
    try:
        import tkinter  # noqa: F401

        from PIL import ImageTk  # noqa: F401
    except ImportError:
        return False
    return True


def window_backend() -> str | None:
    """'opencv', 'tk', or None when no live window can be opened here."""
    if not display_available():
        return None
    if opencv_has_gui():
        return "opencv"
    # Tk speaks X11 only (XWayland provides DISPLAY on Wayland desktops).
    x11 = sys.platform != "linux" or bool(os.environ.get("DISPLAY"))
    return "tk" if x11 and tk_available() else None


def no_window_reason() -> str:
    if not display_available():
        return "no display (DISPLAY and WAYLAND_DISPLAY are unset)"
    if tk_available() and not os.environ.get("DISPLAY"):
        return "Tk needs an X11 DISPLAY (XWayland) and this OpenCV has no GUI"
    return "this OpenCV has no GUI and Python has no tkinter (install python3-tk or opencv-python)"


class OpenCvWindow:
    def __init__(self, title: str = TITLE):
        self.title = title

    def show(self, rgb: np.ndarray) -> bool:
        """Draw one frame; False once the user asked to quit."""
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        return not closed and key not in (ord("q"), ord("Q"), 27)

    def close(self) -> None:
        cv2.destroyWindow(self.title)


class TkWindow:
    def __init__(self, title: str = TITLE):
        import tkinter

        self.root = tkinter.Tk()
        self.root.title(title)
        self.label = tkinter.Label(self.root)
        self.label.pack()
        self.open = True
        self.root.protocol("WM_DELETE_WINDOW", self._quit)
        self.root.bind_all("<Key>", lambda event: self._quit() if event.keysym in QUIT_KEYS else None)
        self.root.focus_force()
        self._photo = None  # Tk shows the image only while Python holds a reference to it

    def _quit(self) -> None:
        self.open = False

    def show(self, rgb: np.ndarray) -> bool:
        """Draw one frame and handle pending window events; False once the user asked to quit."""
        from PIL import Image, ImageTk

        if not self.open:
            return False
        self._photo = ImageTk.PhotoImage(Image.fromarray(rgb), master=self.root)
        self.label.configure(image=self._photo)
        self.root.update()
        return self.open

    def close(self) -> None:
        try:
            self.root.destroy()
        except Exception:  # already gone with its display
            pass


class WindowError(Exception):
    """The display was announced but a window could not be opened on it."""


def open_window(backend: str, title: str = TITLE) -> OpenCvWindow | TkWindow:
    """An open window, or WindowError naming the display problem in one line."""
    try:
        if backend == "opencv":
            window = OpenCvWindow(title)
            cv2.namedWindow(title)
            return window
        return TkWindow(title)
    except Exception as exc:  # tkinter.TclError, cv2.error: e.g. a stale ssh DISPLAY
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WindowError(f"cannot open a window on display {os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')!r} "
                          f"({detail})") from None
