"""Scenarios: Cisco TAC 118893's procedures and their failure cases, replayed on emulated clusters.

``model`` reads and checks scenario files; ``runner`` runs one with real
servers and phones and checks every expectation; ``report`` prints the result
as a table, JSON or JUnit XML.
"""

from phone.scenario.definition import Expectation, Scenario, ScenarioError, ScenarioStep, find_scenario, list_scenarios, load_scenario

__all__ = ["Expectation", "Scenario", "ScenarioError", "ScenarioStep", "find_scenario", "list_scenarios", "load_scenario"]
