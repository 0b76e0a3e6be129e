"""What a person runs beside the server: doctor, the prompt report, terminal progress,
the memory report."""
