"""Implementations of the example tools (tools.yaml). Each is called in the sandbox with
the model's arguments as keyword arguments and returns a JSON value; raising an exception
makes the call a failed execution (the exchange is rejected with the traceback)."""

from __future__ import annotations

METRES = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "ft": 0.3048}
WEATHER = {
    "Paris": {"temperature_c": 11, "sky": "cloudy"},
    "London": {"temperature_c": 9, "sky": "rain"},
    "Tokyo": {"temperature_c": 15, "sky": "clear"},
    "Nairobi": {"temperature_c": 24, "sky": "sunny"},
    "Lima": {"temperature_c": 19, "sky": "overcast"},
}


def calculate(a: float, b: float, operation: str) -> float:
    if operation == "add":
        return a + b
    if operation == "subtract":
        return a - b
    if operation == "multiply":
        return a * b
    if operation == "divide":
        if b == 0:
            raise ZeroDivisionError("cannot divide by zero")
        return a / b
    raise ValueError(f"unknown operation {operation!r}")


def convert_length(value: float, from_unit: str, to_unit: str) -> dict[str, float | str]:
    result = value * METRES[from_unit] / METRES[to_unit]
    return {"value": round(result, 4), "unit": to_unit}


def get_weather(city: str) -> dict[str, object]:
    return {"city": city, **WEATHER[city]}
