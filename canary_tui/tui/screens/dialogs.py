"""Modal dialogs: a y/n confirmation, and a line of text (a reason or a note)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; y confirms, n or escape cancels."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 60; max-width: 100%; height: auto; border: thick $warning;
                               background: $surface; padding: 1 2; }
    ConfirmScreen Label { width: 1fr; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n", "answer(False)", "No", id="confirm_no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm_cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="question")
            yield Label("[b]y[/b] yes    [b]n[/b] no", id="answers")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TextScreen(ModalScreen[str | None]):
    """Ask for a line of text; enter submits (empty text is refused), escape cancels."""

    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > Vertical { width: 70; max-width: 100%; height: auto; border: thick $accent;
                            background: $surface; padding: 1 2; }
    TextScreen #problem { color: $error; height: auto; }
    TextScreen Label { width: 1fr; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="text_cancel")]

    def __init__(self, prompt: str, placeholder: str = "") -> None:
        super().__init__()
        self.prompt = prompt
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.prompt)
            yield Input(placeholder=self.placeholder, id="text")
            yield Label("", id="problem")
            yield Label("[b]enter[/b] submit    [b]escape[/b] cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.query_one("#problem", Label).update("please type something, or escape to cancel")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class LeaveScreen(ModalScreen[str | None]):
    """Leaving as the last one attached: keep the loop running (default), or stop it.

    Stopping a live canary first asks what happens to it (kill, or hold where it is); a
    canary that has already ended (rolled back, promoted) has nothing left to decide, so `s`
    then stops the loop at once. Every line wraps: nothing is cut off at 80 columns."""

    DEFAULT_CSS = """
    LeaveScreen { align: center middle; }
    LeaveScreen > Vertical { width: 72; max-width: 100%; height: auto; max-height: 100%;
                             border: thick $warning; background: $surface; padding: 1 2; }
    LeaveScreen Label { width: 1fr; }
    LeaveScreen #leave-answers { margin-top: 1; }
    """
    BINDINGS = [
        Binding("enter,l", "choose('leave')", "Leave running", id="leave_running"),
        Binding("s", "stop", "Stop loop", id="leave_stop"),
        Binding("k", "choose('kill')", "Kill+stop", show=False, id="leave_kill"),
        Binding("h", "choose('hold')", "Hold+stop", show=False, id="leave_hold"),
        Binding("escape", "choose(None)", "Stay", id="leave_cancel"),
    ]

    def __init__(self, unattended: str, ended: str | None = None) -> None:
        """`ended`: the canary's final phase ("rolled back", "promoted") when it is over."""
        super().__init__()
        self.unattended = unattended
        self.ended = ended
        self.stopping = False

    def compose(self) -> ComposeResult:
        if self.ended:
            question = (
                f"You are the last one attached. The canary is already [b]{self.ended}[/b]: "
                "the loop has nothing left to change."
            )
            answers = ("[b]enter[/b]   leave the session daemon running\n"
                       "[b]s[/b]       stop the loop now\n[b]escape[/b]  stay")  # fmt: skip
        else:
            question = (
                "You are the last one attached. Without you the loop keeps running with "
                f"auto-rollback armed; unattended it will [b]{self.unattended}[/b]."
            )
            answers = ("[b]enter[/b]   leave it running\n[b]s[/b]       stop the loop\n"
                       "[b]escape[/b]  stay")  # fmt: skip
        with Vertical():
            yield Label(question, id="leave-question")
            yield Label(answers, id="leave-answers")

    def action_stop(self) -> None:
        if self.ended:  # nothing to kill or hold: stop the loop as it is
            self.dismiss("hold")
            return
        self.stopping = True
        self.query_one("#leave-question", Label).update(
            "Stop the loop. What should happen to the canary first?"
        )
        self.query_one("#leave-answers", Label).update(
            "[b]k[/b]       kill it (weight 0), then stop\n"
            "[b]h[/b]       hold it where it is, then stop\n[b]escape[/b]  stay"
        )

    def action_choose(self, choice: str | None) -> None:
        if choice in ("kill", "hold") and not self.stopping:
            return
        self.dismiss(choice)
