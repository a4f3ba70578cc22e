"""The query/retrieve dialog: pick a node, search it (C-FIND), retrieve the selected studies or
series (C-GET, or C-MOVE to our listener) with progress per instance and Cancel.

Nothing here waits on the network in the UI thread: queries and echoes run on a thread, a
retrieval in a child process (see `pacs_retrieval`). What arrives is indexed as it comes; the
dialog says so through `stored(series_uid)` and `retrieval_finished(outcomes)`, and the window
refreshes its study browser from those."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QDate, QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workstation.gui.pacs_background import BackgroundCalls, RetrieveJob
from workstation.gui.pacs_retrieval import (
    RetrievalRequest,
    Target,
    TargetOutcome,
    describe_outcome,
    plain_error,
)
from workstation.gui.pacs_settings import listener_port, our_ae_title

ROW_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
ERROR_STYLE = "color: #ff7b72;"
OK_STYLE = "color: #7ee787;"

# (header, keyword) per query level: the columns PACS clients usually show
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "patient": [
        ("Patient name", "PatientName"),
        ("Patient ID", "PatientID"),
        ("Birth date", "PatientBirthDate"),
        ("Sex", "PatientSex"),
        ("Studies", "NumberOfPatientRelatedStudies"),
    ],
    "study": [
        ("Patient name", "PatientName"),
        ("Patient ID", "PatientID"),
        ("Date", "StudyDate"),
        ("Time", "StudyTime"),
        ("Description", "StudyDescription"),
        ("Modalities", "ModalitiesInStudy"),
        ("Accession", "AccessionNumber"),
        ("Series", "NumberOfStudyRelatedSeries"),
        ("Images", "NumberOfStudyRelatedInstances"),
        ("Study UID", "StudyInstanceUID"),
    ],
    "series": [
        ("Number", "SeriesNumber"),
        ("Modality", "Modality"),
        ("Description", "SeriesDescription"),
        ("Images", "NumberOfSeriesRelatedInstances"),
        ("Series UID", "SeriesInstanceUID"),
        ("Study UID", "StudyInstanceUID"),
    ],
}
NUMERIC = {
    "NumberOfPatientRelatedStudies",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
    "NumberOfSeriesRelatedInstances",
    "SeriesNumber",
}
DATE_CHOICES = ("Any date", "Today", "Last 7 days", "Last 30 days", "Last 365 days", "Between")
MODALITIES = ("", "CT", "MR", "PT", "NM", "US", "CR", "DX", "MG", "XA", "RF", "SEG", "SR", "OT")


# -- text shown in the table -----------------------------------------------------------------
def display_value(keyword: str, value: str) -> str:
    """DICOM values as people read them: names without carets, dates with dashes."""
    value = str(value or "")
    if keyword == "PatientName":
        family, _, rest = value.partition("^")
        given = " ".join(p for p in rest.split("^") if p)
        return f"{family}, {given}" if given else family
    if keyword.endswith("Date") and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    if keyword.endswith("Time") and len(value) >= 4 and value[:4].isdigit():
        return f"{value[:2]}:{value[2:4]}"
    return value.replace("\\", ", ")


def date_range(choice: str, start: QDate, end: QDate, today: QDate | None = None) -> str | None:
    """The C-FIND StudyDate range for a date choice ("Last 7 days" includes today)."""
    today = today or QDate.currentDate()
    days = {"Today": 0, "Last 7 days": 6, "Last 30 days": 29, "Last 365 days": 364}
    if choice in days:
        first = today.addDays(-days[choice])
        return f"{first.toString('yyyyMMdd')}-{today.toString('yyyyMMdd')}"
    if choice == "Between":
        first, last = sorted((start, end), key=lambda d: d.toJulianDay())
        return f"{first.toString('yyyyMMdd')}-{last.toString('yyyyMMdd')}"
    return None


class SortableItem(QTableWidgetItem):
    """Sorts by a key (numbers as numbers, text case-insensitively), not by the shown text."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if mine is None or theirs is None or type(mine) is not type(theirs):
            return str(mine) < str(theirs)
        return mine < theirs


def _sort_key(keyword: str, value: str) -> Any:
    if keyword in NUMERIC:
        try:
            return (0, int(float(value)), "")
        except ValueError:
            return (1, 0, value)  # unknown counts sort after every number
    return (0, 0, str(value).lower())


# -- adding a node -----------------------------------------------------------------------------
class AddNodeDialog(QDialog):
    """Name, AE title, host and port of a peer; the store refuses bad values with a message."""

    def __init__(self, store_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a DICOM node")
        self.store_dir = Path(store_dir)
        self.node: Any = None
        self.name = QLineEdit(placeholderText="PACS")
        self.ae_title = QLineEdit(placeholderText="ORTHANC")
        self.host = QLineEdit(placeholderText="pacs.hospital.local or 10.0.0.5")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.message = QLabel()
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Name", self.name)
        form.addRow("AE title", self.ae_title)
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow(self.message)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def save(self) -> None:
        from workstation.dicom.net import NodeError, NodeStore

        nodes = NodeStore(self.store_dir)
        try:
            self.node = nodes.add(
                self.name.text(), self.ae_title.text(), self.host.text(), self.port.value()
            )
        except NodeError as error:
            self.message.setText(str(error))
            return
        finally:
            nodes.close()
        self.accept()


# -- the dialog ----------------------------------------------------------------------------------
class PacsDialog(QDialog):
    """Query/retrieve. `stored(series_uid)` as instances are indexed; `retrieval_finished(list)`
    with one TargetOutcome per study or series when a retrieval ends (complete or not)."""

    stored = Signal(str)
    retrieval_finished = Signal(list)
    search_finished = Signal(int)

    def __init__(
        self, store_dir: str | Path, settings: QSettings, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Query / Retrieve")
        self.resize(1100, 640)
        self.store_dir = Path(store_dir)
        self.settings = settings
        self.rows: list[dict[str, str]] = []
        self.level = "study"
        self.job: RetrieveJob | None = None
        self.outcomes: list[TargetOutcome] = []
        self._calls = BackgroundCalls(self)
        self._build()
        self.reload_nodes()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.node_box = QComboBox()
        self.node_box.setMinimumWidth(260)
        self.echo_button = QPushButton("Echo")
        self.echo_button.setToolTip("Check that the node answers (C-ECHO)")
        self.echo_button.clicked.connect(self.echo_node)
        self.add_button = QPushButton("Add node…")
        self.add_button.clicked.connect(self.add_node)
        node_row = QHBoxLayout()
        node_row.addWidget(QLabel("Node"))
        node_row.addWidget(self.node_box, 1)
        node_row.addWidget(self.echo_button)
        node_row.addWidget(self.add_button)

        self.level_box = QComboBox()
        self.level_box.addItems(["patient", "study", "series"])
        self.level_box.setCurrentText("study")
        self.patient_id = QLineEdit(placeholderText="exact, or with * and ?")
        self.patient_name = QLineEdit(placeholderText="Doe* (family^given)")
        self.modality = QComboBox()
        self.modality.setEditable(True)
        self.modality.addItems(MODALITIES)
        self.modality.setMinimumWidth(80)
        self.study_uid = QLineEdit(placeholderText="1.2.840…")
        self.date_choice = QComboBox()
        self.date_choice.addItems(DATE_CHOICES)
        self.date_from, self.date_to = QDateEdit(), QDateEdit()
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setDate(QDate.currentDate())
        self.date_from.setDate(QDate.currentDate().addYears(-1))
        self.date_choice.currentTextChanged.connect(self._date_choice_changed)
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear_fields)
        for edit in (self.patient_id, self.patient_name, self.study_uid):
            edit.returnPressed.connect(self.search)

        fields = QGridLayout()
        fields.addWidget(QLabel("Level"), 0, 0)
        fields.addWidget(self.level_box, 0, 1)
        fields.addWidget(QLabel("Patient ID"), 0, 2)
        fields.addWidget(self.patient_id, 0, 3)
        fields.addWidget(QLabel("Patient name"), 0, 4)
        fields.addWidget(self.patient_name, 0, 5)
        fields.addWidget(QLabel("Modality"), 0, 6)
        fields.addWidget(self.modality, 0, 7)
        fields.addWidget(QLabel("Study date"), 1, 0)
        fields.addWidget(self.date_choice, 1, 1)
        dates = QHBoxLayout()
        self.date_to_label = QLabel("to")
        dates.addWidget(self.date_from)
        dates.addWidget(self.date_to_label)
        dates.addWidget(self.date_to)
        dates.addStretch(1)
        self._date_choice_changed(self.date_choice.currentText())
        fields.addLayout(dates, 1, 2, 1, 2)
        fields.addWidget(QLabel("Study UID"), 1, 4)
        fields.addWidget(self.study_uid, 1, 5, 1, 3)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(clear)
        buttons.addWidget(self.search_button)
        fields.addLayout(buttons, 2, 0, 1, 8)

        self.table = QTableWidget()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemDoubleClicked.connect(self._drill_down)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.message = QLabel("Choose a node and search.")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.method = QComboBox()
        self.method.addItems(["C-GET", "C-MOVE to our listener"])
        self.method.setToolTip(
            "C-GET brings the images over this connection; C-MOVE asks the PACS to send them "
            "to our listener (the PACS must know our AE title, host and listener port)."
        )
        self.retrieve_button = QPushButton("Retrieve selected")
        self.retrieve_button.setEnabled(False)
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()  # shown while a retrieval runs
        self.cancel_button.clicked.connect(self.cancel_retrieval)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")  # "%v / %m instances" once a retrieval starts
        self.progress_label = QLabel("")
        retrieve_row = QHBoxLayout()
        retrieve_row.addWidget(self.method)
        retrieve_row.addWidget(self.retrieve_button)
        retrieve_row.addWidget(self.progress, 1)
        retrieve_row.addWidget(self.cancel_button)

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setPlaceholderText("Retrieval results appear here.")
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addLayout(retrieve_row)
        lower_layout.addWidget(self.progress_label)
        lower_layout.addWidget(self.log, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(lower)
        splitter.setSizes([420, 160])

        layout = QVBoxLayout(self)
        layout.addLayout(node_row)
        layout.addLayout(fields)
        layout.addWidget(self.message)
        layout.addWidget(splitter, 1)

    # -- nodes -----------------------------------------------------------------------------------
    def reload_nodes(self, select: str | None = None) -> None:
        from workstation.dicom.net import NodeStore

        current = select or self.node_box.currentData() or self.settings.value("pacs/last_node")
        nodes = NodeStore(self.store_dir)
        try:
            found = nodes.all()
        finally:
            nodes.close()
        self.node_box.clear()
        for node in found:
            self.node_box.addItem(f"{node.name}  ({node.ae_title}@{node.host}:{node.port})", node)
        names = [n.name for n in found]
        if current is not None:
            name = current.name if hasattr(current, "name") else str(current)
            if name in names:
                self.node_box.setCurrentIndex(names.index(name))
        if not found:
            self._say("No DICOM node is registered yet: add one with “Add node…”.", error=True)
        self._update_buttons()

    def current_node(self) -> Any:
        return self.node_box.currentData()

    def add_node(self) -> None:
        dialog = AddNodeDialog(self.store_dir, self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.node is not None:
            self.reload_nodes(select=dialog.node.name)
            self._say(f"Node {dialog.node.name} added.")

    def echo_node(self) -> None:
        from workstation.dicom.net import echo

        node = self.current_node()
        if node is None:
            return
        ae = our_ae_title(self.settings)
        self.echo_button.setEnabled(False)
        self._say(f"Checking {node.name}…")

        def done(seconds: float) -> None:
            self.echo_button.setEnabled(True)
            self._say(f"{node.name} answers (C-ECHO in {seconds * 1000:.0f} ms).", ok=True)

        def failed(error: Exception) -> None:
            self.echo_button.setEnabled(True)
            self._say(plain_error(error, ae), error=True)

        self._calls.run(lambda: echo(node, ae_title=ae), done, failed)

    # -- search ----------------------------------------------------------------------------------
    def query_filters(self) -> dict[str, str | None]:
        """The C-FIND matching keys from the fields (empty fields match anything)."""
        return {
            "patient_id": self.patient_id.text().strip() or None,
            "patient_name": self.patient_name.text().strip() or None,
            "study_date": date_range(
                self.date_choice.currentText(), self.date_from.date(), self.date_to.date()
            ),
            "modality": self.modality.currentText().strip().upper() or None,
            "study_uid": self.study_uid.text().strip() or None,
        }

    def search(self) -> None:
        from workstation.dicom.net import find

        node = self.current_node()
        if node is None:
            self._say("Choose a node first (or add one).", error=True)
            return
        level = self.level_box.currentText()
        filters = self.query_filters()
        ae = our_ae_title(self.settings)
        self.settings.setValue("pacs/last_node", node.name)
        self.search_button.setEnabled(False)
        self._say(f"Searching {node.name}…")

        def done(rows: list[dict[str, str]]) -> None:
            self.search_button.setEnabled(True)
            self.show_rows(level, rows)
            what = {"patient": "patient(s)", "study": "study(ies)", "series": "series"}[level]
            self._say(f"{len(rows)} {what} found on {node.name}.", ok=bool(rows))
            self.search_finished.emit(len(rows))

        def failed(error: Exception) -> None:
            self.search_button.setEnabled(True)
            self.show_rows(level, [])
            self._say(plain_error(error, ae), error=True)
            self.search_finished.emit(-1)

        self._calls.run(lambda: find(node, level, ae_title=ae, **filters), done, failed)

    def show_rows(self, level: str, rows: list[dict[str, str]]) -> None:
        self.level, self.rows = level, list(rows)
        columns = COLUMNS[level]
        self.table.setSortingEnabled(False)
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels([header for header, _ in columns])
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, (_header, keyword) in enumerate(columns):
                value = row.get(keyword, "")
                item = SortableItem(display_value(keyword, value))
                item.setData(SORT_ROLE, _sort_key(keyword, value))
                if keyword in NUMERIC:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if c == 0:
                    item.setData(ROW_ROLE, row)
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        header = self.table.horizontalHeader()
        header.resizeSections(QHeaderView.ResizeMode.ResizeToContents)
        for c in range(len(columns) - 1):
            header.resizeSection(c, min(header.sectionSize(c) + 12, 320))
        self._update_buttons()

    def row_at(self, table_row: int) -> dict[str, str]:
        """The query match shown in a table row (whatever the sort order)."""
        return dict(self.table.item(table_row, 0).data(ROW_ROLE))

    def selected_rows(self) -> list[dict[str, str]]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.row_at(r) for r in rows]

    def clear_fields(self) -> None:
        for edit in (self.patient_id, self.patient_name, self.study_uid):
            edit.clear()
        self.modality.setCurrentText("")
        self.date_choice.setCurrentText("Any date")

    def _drill_down(self, item: QTableWidgetItem) -> None:
        """Double-click: a patient shows their studies, a study shows its series."""
        row = self.row_at(item.row())
        if self.level == "patient":
            self.clear_fields()
            self.patient_id.setText(row.get("PatientID", ""))
            self.level_box.setCurrentText("study")
        elif self.level == "study":
            self.study_uid.setText(row.get("StudyInstanceUID", ""))
            self.level_box.setCurrentText("series")
        else:
            return
        self.search()

    def _date_choice_changed(self, choice: str) -> None:
        for widget in (self.date_from, self.date_to_label, self.date_to):
            widget.setVisible(choice == "Between")

    # -- retrieve --------------------------------------------------------------------------------
    def targets_for(self, rows: list[dict[str, str]]) -> list[Target]:
        targets = []
        for row in rows:
            if self.level == "patient":
                name = display_value("PatientName", row.get("PatientName", ""))
                targets.append(
                    Target(patient_id=row.get("PatientID", ""), label=f"{name} (patient)")
                )
            elif self.level == "study":
                label = " ".join(
                    p
                    for p in (
                        display_value("PatientName", row.get("PatientName", "")),
                        display_value("StudyDate", row.get("StudyDate", "")),
                        row.get("StudyDescription", ""),
                    )
                    if p
                )
                targets.append(
                    Target(
                        row["StudyInstanceUID"],
                        label=f"Study {label}".strip(),
                        expected=_count(row.get("NumberOfStudyRelatedInstances")),
                    )
                )
            else:
                number = row.get("SeriesNumber", "")
                label = (
                    f"Series {row.get('Modality', '')} #{number} {row.get('SeriesDescription', '')}"
                )
                targets.append(
                    Target(
                        row["StudyInstanceUID"],
                        row["SeriesInstanceUID"],
                        label=label.strip(),
                        expected=_count(row.get("NumberOfSeriesRelatedInstances")),
                    )
                )
        return targets

    def retrieve_selected(self) -> None:
        node = self.current_node()
        rows = self.selected_rows()
        if node is None or not rows or self.job is not None:
            return
        self.start_retrieval(self.targets_for(rows), move=self.method.currentIndex() == 1)

    def start_retrieval(self, targets: list[Target], move: bool = False) -> None:
        node = self.current_node()
        request = RetrievalRequest(
            str(self.store_dir),
            node.to_dict(),
            targets,
            move=move,
            ae_title=our_ae_title(self.settings),
            port=listener_port(self.settings),
        )
        self.job = RetrieveJob(request, self)
        self.job.planned.connect(self._on_planned)
        self.job.progress.connect(self._on_progress)
        self.job.stored.connect(self.stored)
        self.job.target_done.connect(self._on_target_done)
        self.job.finished.connect(self._on_finished)
        self._done_before: list[int] = []
        self._planned = list(targets)
        self._set_progress_range()
        self.outcomes = []
        self.log.appendPlainText(
            f"Retrieving {len(targets)} item(s) from {node.name} ({'C-MOVE' if move else 'C-GET'})…"
        )
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self._update_buttons()
        self.job.start()

    def cancel_retrieval(self) -> None:
        if self.job is not None:
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling; indexing what has arrived…")
            self.job.cancel()

    def shutdown(self) -> None:
        """Stop a running retrieval and wait for it (the window is closing)."""
        if self.job is not None:
            self.job.cancel()
            self.job.wait()
        self._calls.wait(5.0)

    def _set_progress_range(self) -> None:
        self.progress.setFormat("%v / %m instances")
        total = sum(max(t.expected, 0) for t in self._planned)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(0)
        self._done_before = [0] * len(self._planned)

    def _on_planned(self, targets: list[Target]) -> None:
        self._planned = list(targets)
        self._set_progress_range()

    def _on_progress(self, index: int, done: int, total: int) -> None:
        if index >= len(self._planned):
            return
        target = self._planned[index]
        if target.expected != total:  # the node's image list is the truth, not the query count
            target.expected = total
            self.progress.setMaximum(max(sum(t.expected for t in self._planned), 1))
        self._done_before[index] = done
        self.progress.setValue(sum(self._done_before))
        name = target.label or target.study_uid
        self.progress_label.setText(
            f"{name}: {done} of {total} instance(s) ({index + 1} of {len(self._planned)})"
        )

    def _on_target_done(self, outcome: TargetOutcome) -> None:
        self.outcomes.append(outcome)
        self.log.appendPlainText(describe_outcome(outcome, our_ae_title(self.settings)))

    def _on_finished(self, outcomes: list[TargetOutcome]) -> None:
        job, self.job = self.job, None
        if job is not None:
            job.wait(5.0)
            job.deleteLater()
        self.cancel_button.hide()
        complete = sum(1 for o in outcomes if o.complete)
        failed = len(outcomes) - complete
        text = f"Retrieval finished: {complete} of {len(outcomes)} complete"
        if failed:
            text += f"; {failed} incomplete or failed (see below)"
        self.progress_label.setText(text + ".")
        if failed:
            self._say(text + ".", error=True)
        self._update_buttons()
        self.retrieval_finished.emit(outcomes)

    # -- small helpers ---------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        has_node = self.current_node() is not None
        self.search_button.setEnabled(has_node and not self._calls.busy())
        self.echo_button.setEnabled(has_node)
        selected = bool(self.table.selectionModel().selectedRows()) if self.rows else False
        self.retrieve_button.setEnabled(has_node and selected and self.job is None)

    def _say(self, text: str, ok: bool = False, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else OK_STYLE if ok else "")


def _count(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
