"""CORE (pure): what the clinic console shows, computed from records — no I/O, no web framework.

``course.course_view`` turns one patient's records into the numbers of the course-of-care page;
``thresholds`` holds the clinically important changes with their sources; ``charts`` draws them as
SVG text. The Flask views in ``fhir_iastm.api.console`` only fetch records and render templates.
docs/console.md describes the pages.
"""
