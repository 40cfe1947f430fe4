"""What the lessons use and the package itself does not: figures, widgets, exercise checkers,
interpolation and the notebook glue (``lesson``)."""
