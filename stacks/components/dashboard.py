"""A CloudWatch dashboard per endpoint showing every alarm with its metric and threshold."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from creative_scoring.config.naming import dashboard_name


class EndpointDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, endpoint_name: str, alarms: list[cw.Alarm]) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=dashboard_name(endpoint_name))
        self.dashboard.add_widgets(
            cw.TextWidget(markdown=f"# {endpoint_name}\nEvery alarm of the endpoint, with its threshold.", width=24)
        )
        self.dashboard.add_widgets(cw.AlarmStatusWidget(alarms=list(alarms), width=24))
        self.dashboard.add_widgets(*(cw.AlarmWidget(alarm=alarm, width=8, height=6) for alarm in alarms))
