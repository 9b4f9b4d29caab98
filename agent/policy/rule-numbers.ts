/**
 * Node-wide numbers for policy rules: cm_policy values carry them and cm_policy_drops counts by them,
 * so a drop can be shown against the rule that caused it. 0 is "no rule" (default deny).
 */
import type { PolicyRuleRef } from "../../lib/policy/types.js";

export const ruleRefString = (rule: PolicyRuleRef): string =>
  `${rule.kind}/${rule.namespace ?? ""}/${rule.name}/${rule.direction}/${rule.index}`;

export class RuleNumbers {
  private readonly numbers = new Map<string, number>();
  private readonly refs = new Map<number, PolicyRuleRef>();

  number(rule: PolicyRuleRef): number {
    const key = ruleRefString(rule);
    let number = this.numbers.get(key);
    if (number === undefined) {
      number = this.numbers.size + 1;
      this.numbers.set(key, number);
      this.refs.set(number, { ...rule });
    }
    return number;
  }

  rule(number: number): PolicyRuleRef | undefined {
    return this.refs.get(number);
  }
}
